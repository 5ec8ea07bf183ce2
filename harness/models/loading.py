"""Resolve a ``--model`` value and load it as a TransformerLens ``TransformerBridge`` (paper §1).

Every model goes through one path: a Hugging Face causal LM in memory (from a GGUF file, a local
directory, the hub or the local HF cache) is wrapped with ``TransformerBridge.boot_transformers`` and
given the paper's weight processing, ``enable_compatibility_mode()`` (fold LayerNorm, centre the
writing weights, centre the unembedding, fold value biases), as the authors' ``HookedTransformer``
loading did. On RMSNorm models only the unembedding is centred (TransformerLens's behaviour).

The embedded models (``harness.models.embedded``: ``smollm2-135m``, the default, and ``gemma3-270m``)
are GGUF files that PyPI packages ship. Dequantizing one is slow (its header is parsed once,
``gguf_parsed_once``), so a float32 copy is saved in the suite's cache and later sessions load that.

BOS: the paper's TransformerLens prepended BOS to every prompt (its positions count BOS as 0), so
the suite prepends BOS by default on every model and passes ``prepend_bos`` explicitly everywhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from harness.models.embedded import DEFAULT_MODEL, EMBEDDED_MODELS, EmbeddedModelMissing, embedded_gguf_path
from harness.models.paper import PAPER_MODELS

EMBEDDED_MODEL = DEFAULT_MODEL
DEVICE_MAPS = ("auto", "balanced")


DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

ACCEPTED_MODEL_FORMS = (
    f"an embedded model ({', '.join(EMBEDDED_MODELS)}); a paper model name ({', '.join(PAPER_MODELS)}); "
    "a Hugging Face hub id of the form 'owner/name'; a local Hugging Face model directory "
    "(with config.json); or a local '.gguf' file"
)


class ModelSpecError(ValueError):
    """A ``--model``, ``--device`` or ``--dtype`` value the suite does not accept."""


class ModelUnavailableError(RuntimeError):
    """A remote model that cannot be fetched (no network) and has no local copy."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from. ``kind`` is embedded, paper, hub, local_dir or gguf."""

    name: str
    kind: str
    location: str


def resolve_model(spec: str) -> ModelSource:
    """Map a ``--model`` value to its source, or raise ``ModelSpecError`` listing accepted forms."""
    if spec in EMBEDDED_MODELS:
        return ModelSource(spec, "embedded", EMBEDDED_MODELS[spec].package)
    if spec in PAPER_MODELS:
        return ModelSource(spec, "paper", PAPER_MODELS[spec].hub_id)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelSpecError(f"--model {spec!r}: no such GGUF file")
        return ModelSource(path.stem, "gguf", str(path.resolve()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSpecError(
                f"--model {spec!r} is a directory without config.json; accepted: {ACCEPTED_MODEL_FORMS}"
            )
        return ModelSource(path.resolve().name, "local_dir", str(path.resolve()))
    parts = spec.split("/")
    if len(parts) == 2 and all(parts) and not path.exists():
        return ModelSource(spec, "hub", spec)
    raise ModelSpecError(f"unknown --model {spec!r}; accepted: {ACCEPTED_MODEL_FORMS}")


def resolve_device(spec: str | None) -> str:
    """``None`` means cuda if present, else cpu. Accepted: cpu, cuda, cuda:N, mps."""
    if spec is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    accepted = "cpu, cuda, cuda:N (N a device index), mps"
    kind, _, index = spec.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (":" in spec and (kind != "cuda" or not index.isdigit())):
        raise ModelSpecError(f"unknown --device {spec!r}; accepted: {accepted}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelSpecError(f"--device {spec!r} requested but CUDA is not available; accepted here: cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ModelSpecError(f"--device {spec!r} requested but MPS is not available; accepted here: cpu")
    return spec


def resolve_device_map(spec: str | None) -> str | None:
    """``--device-map``: None (one device), or auto / balanced over the visible CUDA devices."""
    if spec is None:
        return None
    if spec not in DEVICE_MAPS:
        raise ModelSpecError(f"unknown --device-map {spec!r}; accepted: {', '.join(DEVICE_MAPS)}")
    if not torch.cuda.is_available():
        raise ModelSpecError(f"--device-map {spec} places a model over GPUs, but CUDA is not available; "
                             "without it, leave --device-map out (the model loads on --device)")
    return spec


def resolve_dtype(spec: str) -> torch.dtype:
    if spec not in DTYPES:
        raise ModelSpecError(f"unknown --dtype {spec!r}; accepted: {', '.join(DTYPES)}")
    return DTYPES[spec]


@dataclass
class LoadedModel:
    """A bridge plus everything the report must say about how it was loaded."""

    bridge: "object"
    source: ModelSource
    device: str
    dtype: str
    prepend_bos: bool
    processing: dict[str, bool]
    weights_sha256: str
    load_seconds: float
    info: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def n_layers(self) -> int:
        return int(self.bridge.cfg.n_layers)

    @property
    def tokenizer(self):
        return self.bridge.tokenizer


def load_model(
    source: ModelSource,
    device: str = "cpu",
    dtype: str = "float32",
    cache_dir: str | os.PathLike | None = None,
    prepend_bos: bool = True,
    device_map: str | None = None,
) -> LoadedModel:
    """Load ``source`` as a bridge with the paper's weight processing applied. ``device_map`` (auto or
    balanced): Hugging Face accelerate places the layers over the visible GPUs and the bridge wraps the
    placed model; ``device`` is then the first layer's device."""
    import time

    from transformer_lens.model_bridge import TransformerBridge

    start = time.perf_counter()
    torch_dtype = resolve_dtype(dtype)
    hf_model, tokenizer, info = _load_hf(source, torch_dtype, cache_dir, device_map)
    # GGUF configs carry no ``architectures``; the bridge picks its adapter from it.
    hf_model.config.architectures = [type(hf_model).__name__]
    hf_model.eval()
    bridge = TransformerBridge.boot_transformers(
        source.location, hf_model=hf_model, tokenizer=tokenizer, device=None if device_map else device,
        dtype=torch_dtype,
    )
    if device_map:
        info["device_map"] = {name: str(place) for name, place in hf_model.hf_device_map.items()}
        device = str(bridge.cfg.device)
    processing = dict(
        fold_ln=True, center_writing_weights=True, center_unembed=True, fold_value_biases=True
    )
    bridge.enable_compatibility_mode(disable_warnings=True, **processing)
    bridge.eval()
    for parameter in bridge.parameters():
        parameter.requires_grad_(False)
    info.update(
        architecture=type(hf_model).__name__,
        n_layers=int(bridge.cfg.n_layers),
        d_model=int(bridge.cfg.d_model),
        n_heads=int(bridge.cfg.n_heads),
        normalization=str(getattr(bridge.cfg, "normalization_type", "?")),
    )
    return LoadedModel(
        bridge=bridge,
        source=source,
        device=device,
        dtype=dtype,
        prepend_bos=prepend_bos,
        processing=processing,
        weights_sha256=weights_hash(bridge),
        load_seconds=time.perf_counter() - start,
        info=info,
    )


def weights_hash(bridge) -> str:
    """SHA-256 over the processed weights, in parameter-name order (keys the activation cache)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(bridge.original_model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _load_hf(source: ModelSource, dtype: torch.dtype, cache_dir, device_map: str | None = None):
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = dict(dtype=dtype, attn_implementation="eager") | ({"device_map": device_map} if device_map else {})
    if source.kind in ("embedded", "gguf"):
        try:
            gguf_path = (embedded_gguf_path(source.name, cache_dir or default_cache_dir()) if source.kind == "embedded"
                         else Path(source.location))
        except EmbeddedModelMissing as error:
            raise ModelUnavailableError(str(error)) from None
        folder = converted_gguf_dir(gguf_path, cache_dir)
        record = conversion_record(folder)
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        except (OSError, ValueError, RuntimeError, SafetensorError):  # a damaged copy: rebuilt once, under the lock
            folder = converted_gguf_dir(gguf_path, cache_dir, damaged=record)
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        info = {"weights_file": gguf_path.name, "converted_copy": str(folder)}
        return model, AutoTokenizer.from_pretrained(folder), info
    if source.kind == "local_dir":
        return (
            AutoModelForCausalLM.from_pretrained(source.location, local_files_only=True, **kwargs),
            AutoTokenizer.from_pretrained(source.location, local_files_only=True),
            {"weights_dir": source.location},
        )
    return _load_from_hub(source, kwargs)


def _load_from_hub(source: ModelSource, kwargs: dict):
    """Hub id: the local HF cache first, the network second; one clear error if neither has it."""
    from huggingface_hub import try_to_load_from_cache
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hub_id = source.location
    cached = isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    offline = cached or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    try:
        model = AutoModelForCausalLM.from_pretrained(hub_id, local_files_only=offline, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(hub_id, local_files_only=offline)
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"model {source.name!r} (Hugging Face hub id {hub_id!r}) is not available: "
            f"{'no local copy in the HF cache' if offline else 'the hub could not be reached and there is no local copy'}"
            f" ({type(error).__name__}). Provide it one of these ways: (1) download it once on a "
            f"machine with network (`hf download {hub_id}`) into the HF cache (HF_HOME) and run with "
            f"HF_HUB_OFFLINE=1; (2) save it with save_pretrained and pass the directory: "
            f"--model /path/to/dir; (3) pass a local .gguf file: --model /path/to/model.gguf"
        ) from None
    return model, tokenizer, {"hub_id": hub_id, "from_local_cache": offline}


def converted_gguf_dir(gguf_path: Path, cache_dir, damaged: str | None = None) -> Path:
    """A dequantized float32 copy of a GGUF model, made once and reused (keyed by the file's hash).

    Sessions sharing a cache convert under one lock (``<copy>.lock``): one converts, the others wait and
    reuse its copy. ``damaged``: the ``conversion_record`` of a copy that failed to load; that copy, if it is
    still the one in place, is rebuilt (a copy another session rebuilt meanwhile is reused)."""
    from filelock import FileLock

    root = Path(cache_dir or default_cache_dir()) / "models"
    target = root / f"{gguf_path.stem}-{_file_sha256(gguf_path)[:16]}"
    if conversion_record(target) not in (None, damaged):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        record = conversion_record(target)
        if record is None or record == damaged:
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
            try:
                _dequantize_gguf(gguf_path, staging)
                (staging / "COMPLETE").write_text(f"{gguf_path}\nconversion {os.urandom(8).hex()}\n")
                _install_converted(staging, target, replacing=record)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


def conversion_record(folder: Path) -> str | None:
    """The ``COMPLETE`` record of a converted copy (unique to each conversion); None if it is not complete."""
    try:
        return (folder / "COMPLETE").read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


@contextmanager
def gguf_parsed_once() -> Iterator[None]:
    """Within the block, ``gguf.GGUFReader`` parses each file once and hands the same (read-only) reader to
    every later caller. transformers reads a GGUF's header once for the tokenizer, once for the config and
    once for the weights, and the header holds the tokenizer (SmolLM2: 49,152 tokens and their merges),
    which the reader parses element by element in Python, slowly, each time."""
    import gguf

    parse = gguf.GGUFReader
    readers: dict[tuple[str, str], object] = {}

    def parsed(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = parse(path, mode)
        return readers[key]

    gguf.GGUFReader = parsed
    try:
        yield
    finally:
        gguf.GGUFReader = parse


def _dequantize_gguf(gguf_path: Path, staging: Path) -> None:
    """Save the GGUF model and its tokenizer to ``staging`` as plain float32 Hugging Face files."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    with gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, attn_implementation="eager"
        )
    # Saved as plain float32 weights: drop the GGUF quantization record.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def _install_converted(staging: Path, target: Path, replacing: str | None) -> None:
    """Move the finished ``staging`` copy to ``target``. An incomplete copy there, or the damaged one whose
    record is ``replacing``, is moved aside and removed; a copy that another writer completed meanwhile is
    kept and ``staging`` discarded."""
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=".replaced-"))
    try:
        if target.exists() and conversion_record(target) in (None, replacing):
            os.rename(target, aside / target.name)
        os.replace(staging, target)
    except OSError:
        if conversion_record(target) is None:
            raise
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$SENTIMENT_CLAIMS_CACHE`` or the platform user cache dir (``~/.cache/sentiment-claims``)."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("SENTIMENT_CLAIMS_CACHE") or user_cache_dir("sentiment-claims"))
