"""A content-addressed on-disk cache for activations, fitted directions and patching results.

Every entry is keyed by a hash of what produced it (model weights, tokens, layers, hyperparameters)
and of the code that computed it (``source_fingerprint`` of the suite's library and fixtures), so a
changed input or a changed method can never be served a stale result. Files are written atomically (temporary file,
then ``os.replace``) and carry a SHA-256 of their payload: a truncated or corrupted file is detected
on read, deleted, and rebuilt by the caller's ``compute`` function.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

_MAGIC = b"sentiment-claims-cache v1\n"


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


def source_fingerprint(*directories: str | os.PathLike) -> str:
    """A digest of every ``*.py`` file under ``directories`` (names and contents)."""
    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(Path(directory).rglob("*.py")):
            digest.update(f"{path.relative_to(directory)}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class DiskCache:
    """Directory of verified ``torch.save`` payloads; ``refresh=True`` recomputes every entry.
    ``code_version`` (e.g. a ``source_fingerprint``) is part of every key."""

    def __init__(self, root: str | os.PathLike, refresh: bool = False, code_version: str = ""):
        self.root = Path(root)
        self.refresh = refresh
        self.code_version = code_version
        self.hits = 0
        self.misses = 0

    def path(self, namespace: str, key: str) -> Path:
        if self.code_version:
            key = content_key(key, self.code_version)
        return self.root / namespace / f"{key}.pt"

    def get_or_compute(self, namespace: str, key: str, compute: Callable[[], Any]) -> Any:
        """Return the cached value for ``key``, or compute, store and return it."""
        path = self.path(namespace, key)
        if not self.refresh:
            value = self.load(path)
            if value is not None:
                self.hits += 1
                return value
        self.misses += 1
        value = compute()
        self.store(path, value)
        return value

    @staticmethod
    def load(path: Path) -> Any | None:
        """The verified payload at ``path``; ``None`` (and the file removed) if missing or damaged."""
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        header_len = len(_MAGIC) + 65
        header, payload = blob[:header_len], blob[header_len:]
        expected = header[len(_MAGIC) : len(_MAGIC) + 64].decode(errors="replace")
        if not header.startswith(_MAGIC) or hashlib.sha256(payload).hexdigest() != expected:
            warnings.warn(f"cache file {path} is truncated or corrupted; rebuilding it", stacklevel=3)
            path.unlink(missing_ok=True)
            return None
        return torch.load(io.BytesIO(payload), weights_only=False)

    @staticmethod
    def store(path: Path, value: Any) -> None:
        """Write ``value`` atomically: a reader sees the old file or the complete new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(value, buffer)
        payload = buffer.getvalue()
        blob = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
