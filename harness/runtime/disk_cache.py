"""A content-addressed on-disk cache for activations, fitted directions and patching results.

Every entry is keyed by a hash of what produced it (model weights, tokens, layers, hyperparameters)
and of the code that computed it (``harness.runtime.code_key``: the library modules its ``compute``
reaches, docstrings and comments aside), so a changed input or a changed method can never be served a
stale result, and an edit elsewhere (a renderer, a claim's threshold) recomputes nothing. Files are written atomically (temporary file,
then ``os.replace``) and carry a SHA-256 of their body: a truncated or damaged file is detected on read,
deleted with a warning, and rebuilt by the caller's ``compute`` function.

Reading an entry executes nothing (the cache directory may be shared): no pickle, no ``torch.load``. A file is

    sentiment-claims-cache v2
    <SHA-256 of the two parts below>
    <the value as one line of JSON: tensors and arrays replaced by references>
    <one safetensors blob holding those tensors>

The JSON tree keeps None, bool, int, float (non-finite ones tagged), str and lists as themselves and tags
the rest: ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys of any scalar or tuple type kept
exactly), ``{"tensor": name}`` (with ``device`` and ``requires_grad`` when not the defaults),
``{"ndarray": name}``, ``{"numpy": dtype, "value": v}`` (numpy scalars) and ``{"object": name, "state":
{...}}``: an instance of a class on the allowlist (``cacheable``), rebuilt from its registered name and its
attributes, never from a module path read from the file. Any other type is refused at store time
(``TypeError``); a file in another format (an older pickle-based entry) or one that fails to decode is
treated as damaged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import safetensors.torch
import torch

from harness.runtime.code_key import code_fingerprint

_MAGIC = b"sentiment-claims-cache v2\n"
_SUFFIX = ".cache"
_SCALARS = (bool, int, str)
_NON_FINITE = ("nan", "inf", "-inf")
_NUMPY_KINDS = "biuf"  # numpy scalars stored: bool, signed and unsigned int, float
_MISSING = object()

ACCEPTED = ("None, bool, int, float, str, list, tuple, dict (keys: None, bool, int, float, str, numpy scalars or "
            "tuples of them), torch.Tensor (strided), numpy.ndarray and numpy bool/int/float scalars, and "
            "instances of classes registered with harness.runtime.disk_cache.cacheable")

# The allowlist: registered name -> class. Every class an entry may hold registers itself where it is
# defined (``@cacheable``; a direction finder through ``register_method``), so this module imports none of
# them: a process reading the cache imports them first (the suite's fixtures do, at plugin load).
_REGISTERED: dict[str, type] = {}


def content_key(*parts: Any) -> str:
    """A stable hex digest of JSON-able parts and tensors (tensors hashed by dtype, shape, bytes)."""
    digest = hashlib.sha256()
    for part in parts:
        _update(digest, part)
    return digest.hexdigest()[:32]


def _update(digest: "hashlib._Hash", part: Any) -> None:
    if isinstance(part, torch.Tensor):
        tensor = part.detach().to("cpu").contiguous()
        digest.update(f"tensor:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(part, (list, tuple)):
        digest.update(f"seq:{len(part)}:".encode())
        for item in part:
            _update(digest, item)
    elif isinstance(part, dict):
        digest.update(f"dict:{len(part)}:".encode())
        for key in sorted(part, key=repr):
            digest.update(f"{key!r}=".encode())
            _update(digest, part[key])
    else:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())


def cacheable(cls: type, name: str | None = None) -> type:
    """Allow instances of ``cls`` in cache entries (usable as a class decorator): stored as their attributes
    (``vars``) under ``name`` (default: the class's qualified name), rebuilt without calling ``__init__``."""
    if not isinstance(cls, type) or "__slots__" in vars(cls):
        raise TypeError(f"cacheable: {cls!r} is not a class whose instances keep their attributes in __dict__")
    name = name or cls.__qualname__
    if _REGISTERED.setdefault(name, cls) is not cls:
        raise ValueError(f"cacheable: the name {name!r} is already registered for {_REGISTERED[name]!r}")
    return cls


def _registry() -> dict[str, type]:
    """The allowlist: every class registered with ``cacheable`` (in this process, so far)."""
    return _REGISTERED


def _registered_name(cls: type) -> str | None:
    return next((name for name, registered in _registry().items() if registered is cls), None)


def _plain_key(key: Any) -> bool:
    """A dict key the format keeps exactly: a scalar, a numpy scalar or a tuple of them."""
    if type(key) is tuple:
        return all(_plain_key(item) for item in key)
    return key is None or type(key) in (*_SCALARS, float) or _numpy_scalar(key)


def _numpy_scalar(value: Any) -> bool:
    return isinstance(value, np.generic) and value.dtype.kind in _NUMPY_KINDS


class _Encoder:
    """Turns one value into its JSON tree; tensors and arrays go to ``tensors`` (one safetensors blob),
    each distinct object once."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._names: dict[int, str] = {}  # id(tensor or array) -> its name in ``tensors``
        self._storages: set[int] = set()

    def encode(self, value: Any, where: str = "value") -> Any:
        kind = type(value)
        if value is None or kind in _SCALARS:
            return value
        if kind is float:
            return value if math.isfinite(value) else {"float": repr(value)}
        if kind is list:
            return [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if kind is tuple:
            return {"tuple": [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
        if kind is dict:
            return {"dict": [self._item(key, item, where) for key, item in value.items()]}
        if kind is torch.Tensor:
            return self._tensor(value, where)
        if kind is np.ndarray:
            return {"ndarray": self._blob(value, _array_as_tensor(value, where))}
        if _numpy_scalar(value):
            return {"numpy": value.dtype.name, "value": self.encode(value.item(), where)}
        name = _registered_name(kind)
        if name is not None:
            return {"object": name, "state": self.encode(dict(vars(value)), f"{where}.__dict__")}
        raise TypeError(f"the disk cache cannot store {where}, of type {kind.__module__}.{kind.__qualname__}; "
                        f"accepted: {ACCEPTED} (registered: {', '.join(sorted(_registry()))})")

    def _item(self, key: Any, item: Any, where: str) -> list:
        if not _plain_key(key):
            raise TypeError(f"the disk cache cannot store {where}: a dict key of type {type(key).__qualname__} "
                            f"({key!r}); accepted keys: None, bool, int, float, str, numpy scalars or tuples of them")
        return [self.encode(key, where), self.encode(item, f"{where}[{key!r}]")]

    def _tensor(self, tensor: torch.Tensor, where: str) -> dict:
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise TypeError(f"the disk cache cannot store {where}: a {tensor.layout} tensor; accepted: dense tensors")
        node: dict[str, Any] = {"tensor": self._blob(tensor, tensor.detach().to("cpu"))}
        if tensor.device.type != "cpu":
            node["device"] = str(tensor.device)
        if tensor.requires_grad:
            node["requires_grad"] = True
        return node

    def _blob(self, original: Any, tensor: torch.Tensor) -> str:
        """The name of ``tensor`` in the blob (``original``: the object the value holds, stored once)."""
        if id(original) not in self._names:
            storage = tensor.untyped_storage()
            if (not tensor.is_contiguous() or storage.nbytes() != tensor.numel() * tensor.element_size()
                    or storage.data_ptr() in self._storages):  # safetensors takes whole, unshared storages only
                tensor = tensor.clone(memory_format=torch.contiguous_format)
            self._storages.add(tensor.untyped_storage().data_ptr())
            self._names[id(original)] = name = str(len(self.tensors))
            self.tensors[name] = tensor
        return self._names[id(original)]


def _array_as_tensor(array: np.ndarray, where: str) -> torch.Tensor:
    try:
        standalone = array.flags.c_contiguous and array.flags.writeable
        return torch.from_numpy(array if standalone else array.copy(order="C"))
    except TypeError as error:
        raise TypeError(f"the disk cache cannot store {where}: a numpy array of dtype {array.dtype} ({error}); "
                        "accepted: numeric and bool arrays") from None


class _Decoder:
    """Rebuilds a value from its JSON tree and the safetensors blob; raises ``ValueError`` on anything else."""

    TAGS = ("tuple", "dict", "float", "tensor", "ndarray", "numpy", "object")

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self._built: dict[tuple[str, str], Any] = {}  # (tag, name) -> the object, so a shared object stays shared

    def decode(self, node: Any) -> Any:
        if node is None or type(node) in (*_SCALARS, float):
            return node
        if type(node) is list:
            return [self.decode(item) for item in node]
        tag = next((tag for tag in self.TAGS if tag in node), None) if type(node) is dict else None
        if tag == "tuple":
            return tuple(self.decode(_expect(node[tag], list)))
        if tag == "dict":
            return dict(self.decode(_expect(pair, list, 2)) for pair in _expect(node[tag], list))
        if tag == "float" and node[tag] in _NON_FINITE:
            return float(node[tag])
        if tag == "tensor":
            device, requires_grad = node.get("device", "cpu"), node.get("requires_grad") is True
            return self._shared(tag, node[tag], lambda tensor: _placed(tensor, device, requires_grad))
        if tag == "ndarray":
            return self._shared(tag, node[tag], lambda tensor: tensor.numpy())
        if tag == "numpy" and np.dtype(node[tag]).kind in _NUMPY_KINDS:
            return np.dtype(node[tag]).type(self.decode(node["value"]))
        if tag == "object":
            return _rebuilt(node[tag], self.decode(node["state"]))
        raise ValueError(f"unexpected JSON node {json.dumps(node)[:80]}")

    def _shared(self, tag: str, name: Any, build: Callable[[torch.Tensor], Any]) -> Any:
        if name not in self.tensors:
            raise ValueError(f"a reference to a missing tensor {name!r}")
        if (tag, name) not in self._built:
            self._built[tag, name] = build(self.tensors[name])
        return self._built[tag, name]


def _expect(node: Any, kind: type, length: int | None = None) -> Any:
    if type(node) is not kind or (length is not None and len(node) != length):
        raise ValueError(f"expected a {kind.__name__}{'' if length is None else f' of {length}'}, got {node!r:.80}")
    return node


def _rebuilt(name: Any, state: Any) -> Any:
    """An instance of the allowlisted class ``name`` with attributes ``state`` (``__init__`` not called)."""
    cls = _registry().get(name) if type(name) is str else None
    if cls is None:
        raise ValueError(f"the class name {name!r} is not on the cache's allowlist")
    if type(state) is not dict or not all(type(key) is str for key in state):
        raise ValueError(f"the state of a {name} is not a dict of attribute names")
    value = cls.__new__(cls)
    vars(value).update(state)
    return value


def _placed(tensor: torch.Tensor, device: Any, requires_grad: bool) -> torch.Tensor:
    """``tensor`` back on the device it was stored from (CPU if that device is not available here)."""
    device = torch.device(device)
    available = device.type == "cpu" or (
        device.type == "cuda" and torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    ) or (device.type == "mps" and torch.backends.mps.is_available())
    tensor = tensor.to(device) if available else tensor
    return tensor.requires_grad_() if requires_grad else tensor


def _encode(value: Any) -> list[bytes]:
    """The two checksummed parts of an entry: the JSON tree line and the safetensors blob."""
    encoder = _Encoder()
    tree = json.dumps(encoder.encode(value), allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    return [tree.encode() + b"\n", safetensors.torch.save(encoder.tensors)]


def _decode(blob: bytes) -> Any:
    """The value of an entry's bytes; ``ValueError`` (or another exception) if they are not a valid entry."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not a sentiment-claims-cache v2 file (e.g. an older, pickle-based entry)")
    checksum, newline, body = blob[len(_MAGIC):].partition(b"\n")
    if not newline or hashlib.sha256(body).hexdigest().encode() != checksum:
        raise ValueError("checksum mismatch")
    tree, _, tensors = body.partition(b"\n")
    return _Decoder(safetensors.torch.load(tensors)).decode(json.loads(tree, parse_constant=_refuse_constant))


def _refuse_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


class DiskCache:
    """Directory of verified entries (the format of the module docstring); ``refresh=True`` recomputes every
    entry. Every key holds ``code_version`` (a label of the caller's choosing) and, in ``get_or_compute``,
    the digest of the code ``compute`` runs (``code_fingerprint``)."""

    def __init__(self, root: str | os.PathLike, refresh: bool = False, code_version: str = ""):
        self.root = Path(root)
        self.refresh = refresh
        self.code_version = code_version
        self.hits = 0
        self.misses = 0

    def path(self, namespace: str, key: str, compute: Callable[[], Any] | None = None) -> Path:
        """The file of ``key``; with ``compute``, of the entry ``get_or_compute(namespace, key, compute)`` uses."""
        if compute is not None:
            key = content_key(key, code_fingerprint(compute))
        if self.code_version:
            key = content_key(key, self.code_version)
        return self.root / namespace / f"{key}{_SUFFIX}"

    def get_or_compute(self, namespace: str, key: str, compute: Callable[[], Any]) -> Any:
        """Return the cached value for ``key``, or compute, store and return it. The entry's key covers
        ``key`` and the code ``compute`` runs (``harness.runtime.code_key``)."""
        path = self.path(namespace, key, compute)
        if not self.refresh:
            value = _read(path)
            if value is not _MISSING:
                self.hits += 1
                return value
        self.misses += 1
        value = compute()
        self.store(path, value)
        return value

    @staticmethod
    def load(path: Path) -> Any | None:
        """The verified value at ``path``; ``None`` (and the file removed) if missing or damaged."""
        value = _read(path)
        return None if value is _MISSING else value

    @staticmethod
    def store(path: Path, value: Any) -> None:
        """Write ``value`` atomically: a reader sees the old file or the complete new one. ``TypeError``,
        before anything is written, for a value holding a type the format does not accept."""
        parts = _encode(value)
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                for part in (_MAGIC, digest.hexdigest().encode() + b"\n", *parts):
                    handle.write(part)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _read(path: Path) -> Any:
    """The value at ``path``, or ``_MISSING`` if there is none or it is damaged (then warned about and removed)."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return _MISSING
    try:
        return _decode(blob)
    except Exception as error:  # any file that does not decode is a miss, never executed
        warnings.warn(f"cache file {path} is truncated, corrupted or in another format ({type(error).__name__}: "
                      f"{error}); not loaded (the cache never unpickles), deleted, and rebuilt", stacklevel=3)
        path.unlink(missing_ok=True)
        return _MISSING
