"""The code a cached computation runs, as a digest: part of every disk-cache key (``DiskCache``).

A computation is the ``compute`` callable handed to ``DiskCache.get_or_compute``. Its digest covers

- its own bytecode (names, constants, nested functions), and that of the functions it reaches through
  its globals and closure cells outside the library (a fixture's helper, a claim test's lambda);
- the plain values (numbers, strings, and tuples, lists and mappings of them) it reads from those
  globals and cells: a protocol number a fixture passes from a declaration keys the entry;
- every ``harness`` module it reaches: the modules of the library functions, classes and instances it
  references, and everything those modules import from ``harness``, transitively (module level or inside
  a function). Each module counts by its syntax tree with docstrings removed, so comments, docstrings
  and formatting never change a key;
- the versions of the libraries that compute (torch, transformer_lens, transformers).

So editing a renderer, a claim declaration or the report recomputes nothing (the library's layers keep
experiments from importing them, ``tests/test_architecture.py``), and editing the patching sweep
recomputes every entry whose computation reaches it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import sys
import types
from importlib import metadata
from typing import Any, Callable, Mapping

LIBRARY = "harness"
RUNTIME_PACKAGES = ("torch", "transformer_lens", "transformers")


def code_fingerprint(compute: Callable[[], Any]) -> str:
    """The digest of what ``compute`` runs (module docstring)."""
    digest = hashlib.sha256()
    modules: set[str] = set()
    for part in _reached_code(compute, modules):
        digest.update(part)
    for module in sorted(library_closure(modules)):
        digest.update(f"{module}\n{module_digest(_module_source(module))}\n".encode())
    digest.update(_runtime_versions().encode())
    return digest.hexdigest()[:16]


def reached_modules(compute: Callable[[], Any]) -> set[str]:
    """Every ``harness`` module whose code ``compute`` may run (the transitive import closure)."""
    modules: set[str] = set()
    list(_reached_code(compute, modules))
    return library_closure(modules)


def module_digest(source: str) -> str:
    """A digest of a module's syntax tree without docstrings: blind to comments, docstrings and layout."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def library_closure(modules: set[str]) -> set[str]:
    """``modules`` and every ``harness`` module they import, transitively, with the packages that hold
    them (importing ``harness.directions.fitting`` runs ``harness/directions/__init__.py`` first, and what
    that imports: e.g. every registered direction finder)."""
    seen: set[str] = set()
    todo = [m for m in modules if _is_library(m)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend({".".join(parts[:i]) for i in range(1, len(parts))} - seen)
        todo.extend(_library_imports(module) - seen)
    return seen


def _is_library(module: str | None) -> bool:
    return bool(module) and (module == LIBRARY or module.startswith(LIBRARY + "."))


def _reached_code(function: Any, modules: set[str]):
    """The bytes of the code of ``function`` and of the non-library functions it reaches, and of the plain
    values they read; library modules of what they reference are added to ``modules``."""
    seen: set[int] = set()
    todo = [function]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.MethodType):
            todo += [obj.__func__, obj.__self__]
            continue
        if isinstance(obj, functools.partial):
            todo += [obj.func, *obj.args, *obj.keywords.values()]
            continue
        if isinstance(obj, types.ModuleType):
            if _is_library(obj.__name__):
                modules.add(obj.__name__)
            continue
        if _is_plain(obj):
            yield _stable_repr(obj).encode()
            continue
        module = getattr(obj, "__module__", None) if isinstance(obj, (type, types.FunctionType)) \
            else getattr(type(obj), "__module__", None)
        if _is_library(module):
            modules.add(module)
            continue
        if not isinstance(obj, types.FunctionType):
            call = getattr(type(obj), "__call__", None)
            if isinstance(call, types.FunctionType):  # a callable object of a class outside the library
                todo.append(call)
            continue
        yield _code_bytes(obj.__code__)
        todo += [cell.cell_contents for cell in obj.__closure__ or () if _has_contents(cell)]
        for name in sorted(_global_names(obj.__code__)):
            if name in obj.__globals__:
                todo.append(obj.__globals__[name])


def _is_plain(value: Any, depth: int = 0) -> bool:
    """A number, string, bytes, None, or a small tuple, list or mapping of them (a protocol's settings)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return True
    if depth > 4:
        return False
    if isinstance(value, (tuple, list, frozenset)) and len(value) <= 1000:
        return all(_is_plain(item, depth + 1) for item in value)
    if isinstance(value, Mapping) and len(value) <= 1000:
        return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _has_contents(cell: types.CellType) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell (a variable not yet assigned)
        return False
    return True


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _code_bytes(code: types.CodeType) -> bytes:
    """Bytecode, names and constants (nested code included); not line numbers or file names."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, types.CodeType) else _stable_repr(const).encode())
    return b"\0".join(parts)


def _stable_repr(value: Any) -> str:
    """``repr`` with sets sorted: a set's iteration order (and so its ``repr``) changes between processes
    with string hashing."""
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({sorted(_stable_repr(item) for item in value)})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_stable_repr(item) for item in value)
        return f"({inner},)" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_stable_repr(k)}: {_stable_repr(v)}" for k, v in value.items()) + "}"
    return repr(value)


@functools.lru_cache(maxsize=None)
def _module_source(module: str) -> str:
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None) if loaded else None
    if path is None:
        spec = importlib.util.find_spec(module)
        path = spec.origin if spec else None
    if path is None:
        raise ModuleNotFoundError(f"code_key: no source for library module {module}")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@functools.lru_cache(maxsize=None)
def _library_imports(module: str) -> frozenset[str]:
    found = set()
    package = module if _module_source_is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(_module_source(module))):
        if isinstance(node, ast.Import):
            found |= {_existing(alias.name) for alias in node.names if _is_library(alias.name)}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if _is_library(base):
                for alias in node.names:
                    found.add(_existing(f"{base}.{alias.name}") or _existing(base))
    return frozenset(m for m in found if m)


def _module_source_is_package(module: str) -> bool:
    loaded = sys.modules.get(module)
    return bool(loaded and hasattr(loaded, "__path__"))


@functools.lru_cache(maxsize=None)
def _existing(module: str) -> str | None:
    """``module`` if it is a module (``from harness.x import y`` names a module or an attribute)."""
    if module in sys.modules:
        return module
    try:
        return module if importlib.util.find_spec(module) is not None else None
    except (ImportError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def _runtime_versions() -> str:
    versions = []
    for package in RUNTIME_PACKAGES:
        try:
            versions.append(f"{package}={metadata.version(package.replace('_', '-'))}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=absent")
    return ";".join(versions)
