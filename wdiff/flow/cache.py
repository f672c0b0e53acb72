"""Disk cache of computed flows, keyed by the video's content and the estimator's settings.

Entries are safetensors files written atomically; their metadata carries a checksum of the
tensor bytes, so a truncated or corrupted entry is detected, discarded and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from wdiff.errors import WdiffError
from wdiff.outputs import save_tensors

FORMAT_VERSION = "1"


def default_cache_dir() -> Path:
    """``$WDIFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/wdiff``, else ``~/.cache/wdiff``."""
    if os.environ.get("WDIFF_CACHE_DIR"):
        return Path(os.environ["WDIFF_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wdiff"


def content_digest(path: Path) -> str:
    """Hash of a file's bytes, or of a folder's image names and bytes (sorted)."""
    digest = hashlib.blake2b(digest_size=20)
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode() if path.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for name in sorted(tensors):
        tensor = tensors[name].contiguous().cpu()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class TensorCache:
    """A folder of checksummed safetensors entries; ``None`` as folder disables it."""

    def __init__(self, folder: Path | None, kind: str = "flow"):
        self.folder = Path(folder) / kind if folder is not None else None
        self.discarded: list[Path] = []
        self.unwritten: list[str] = []  # entries a full disk (say) kept out, with the reason
        if self.folder is not None:
            _check_writable(Path(folder), self.folder)

    def key(self, **parts) -> str:
        text = json.dumps({"version": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.safetensors"

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        """The entry's tensors, or None when absent or damaged (a damaged one is deleted)."""
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                expected = (handle.metadata() or {}).get("checksum")
            tensors = load_file(str(path))
            if expected is None or tensors_digest(tensors) != expected:
                raise ValueError("checksum mismatch")
        except (SafetensorError, ValueError, OSError, RuntimeError):
            self.discarded.append(path)
            path.unlink(missing_ok=True)
            return None
        return tensors

    def store(self, key: str, tensors: dict[str, torch.Tensor], **metadata: str) -> None:
        path = self.path(key)
        if path is None:
            return
        tensors = {name: tensor.contiguous().cpu() for name, tensor in tensors.items()}
        metadata = {**metadata, "checksum": tensors_digest(tensors)}
        try:  # the cache only saves time: a failed write costs the entry, not the run
            save_tensors(tensors, path, metadata)
        except (OSError, SafetensorError, WdiffError) as error:
            self.unwritten.append(f"{path}: {error}")


def _check_writable(given: Path, folder: Path) -> None:
    """Raise WdiffError unless ``folder`` (under the cache folder ``given``) can be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        usable = os.access(folder, os.W_OK | os.X_OK)
        reason = "is not writable"
    except FileExistsError:
        usable, reason = False, "is a file, not a folder"
    except OSError as error:
        usable, reason = False, f"cannot be created ({error.strerror})"
    if not usable:
        raise WdiffError(f"--cache-dir {given}: {reason}; give a writable folder, or --no-cache")
