"""Disk cache of computed flows, keyed by the video's content and the estimator's settings.

Entries are safetensors files read a row (a frame pair) at a time (``tensor_file``). Their
metadata carries one checksum per row, over that row of every tensor, so an entry is written a
row at a time (``ChecksummedWriter``, through ``store.RowSink``) and a truncated or corrupted
one is detected (``TensorCache.open`` checks every row, a row at a time), discarded and
recomputed. The metadata also says what the entry was computed from (``SOURCE``: the key's
parts, i.e. the content digest, the settings, the frame count and size), and ``open`` checks
that and every tensor's dtype and shape against what the caller expects: a valid entry of
another clip put under this key is discarded too, as is anything at the key that is not a
file. A cache whose folder cannot be made for lack of space is no cache (``unwritten`` says
why): it only saves time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import torch

from wdiff.errors import WdiffError
from wdiff.outputs import DISK_ERRORS
from wdiff.tensor_file import RowWriter, Specs, TensorFile, tensor_bytes

FORMAT_VERSION = "4"  # 1: whole tensors, one checksum; 2: no SOURCE; 3: edge pixels
# landing within EDGE_MARGIN outside the frame were invalid
CHECKSUMS = "checksums"  # metadata: one hex digest per row, comma-separated
SOURCE = "computed_from"  # metadata: the key's parts as JSON (sorted keys)
DIGEST_SIZE = 20


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


def rows_digest(rows: dict[str, torch.Tensor]) -> str:
    """Checksum of one row of each tensor (``name -> row``): names sorted, shapes, bytes."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for name in sorted(rows):
        row = rows[name]
        digest.update(name.encode())
        digest.update(str(tuple(row.shape)).encode())
        digest.update(tensor_bytes(row).numpy() if row.numel() else b"")
    return digest.hexdigest()


class ChecksummedWriter:
    """A ``RowWriter`` fed the same rows of every tensor at once (``write``), keeping each row's
    checksum; ``finish`` puts them into the metadata. Every tensor has ``rows`` rows."""

    def __init__(self, handle: BinaryIO, specs: Specs, metadata: dict[str, str] | None = None):
        (self.rows,) = {shape[0] for _, shape in specs.values()}
        self.handle, self.metadata = handle, dict(metadata or {})
        self._sums = ["0" * 2 * DIGEST_SIZE] * self.rows  # same length: rewritten in place
        self._writer = RowWriter(handle, specs, self._with_sums())

    def write(self, start: int, rows: dict[str, torch.Tensor]) -> None:
        """Rows ``start..start+n-1`` of every tensor (``name -> (n, ...)``)."""
        for name, tensor in rows.items():
            self._writer.write(name, start, tensor)
        (count,) = {tensor.shape[0] for tensor in rows.values()}
        for index in range(count):
            self._sums[start + index] = rows_digest({n: t[index] for n, t in rows.items()})

    def finish(self) -> None:
        self._writer.rewrite_metadata(self._with_sums())
        self.handle.flush()

    def _with_sums(self) -> dict[str, str]:
        return {**self.metadata, CHECKSUMS: ",".join(self._sums)}


def verified(file: TensorFile) -> bool:
    """Whether every row of ``file`` matches its checksum (read a row at a time)."""
    names = file.names()
    sums = file.metadata.get(CHECKSUMS, "").split(",")
    if not names or any(file.shape(name)[0] != len(sums) for name in names):
        return False
    return all(
        rows_digest({name: file.read(name, index, index + 1)[0] for name in names}) == expected
        for index, expected in enumerate(sums)
    )


class TensorCache:
    """A folder of safetensors entries with a checksum per row, opened checked (``open``) and
    written by ``store.RowSink``; ``None`` as folder disables it."""

    def __init__(self, folder: Path | None, kind: str = "flow"):
        self.folder = Path(folder) / kind if folder is not None else None
        self.discarded: list[Path] = []
        self.unwritten: list[str] = []  # entries a full disk (say) kept out, with the reason
        self._sources: dict[str, str] = {}  # key -> its parts as JSON (``SOURCE``)
        if self.folder is not None and not _check_writable(Path(folder), self.folder):
            self.unwritten.append(f"{self.folder}: cannot be created (no space left)")
            self.folder = None

    def key(self, **parts) -> str:
        """The entry name for ``parts`` (JSON-able: what the entry is computed from)."""
        text = json.dumps({"version": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
        key = hashlib.blake2b(text.encode(), digest_size=20).hexdigest()
        self._sources[key] = text
        return key

    def source(self, key: str) -> dict[str, str]:
        """The metadata saying what entry ``key`` is computed from (for its writer)."""
        return {SOURCE: self._sources[key]} if key in self._sources else {}

    def path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.safetensors"

    def open(self, key: str, specs: Specs | None = None) -> TensorFile | None:
        """The entry, opened for reading rows after every row's checksum, what it was computed
        from (``key``'s parts) and, given ``specs``, its tensors' dtypes and shapes were
        checked; None when absent or not right (then deleted and listed in ``discarded``)."""
        path = self.path(key)
        if path is None or not (path.exists() or path.is_symlink()):
            return None
        file = None
        try:
            if path.is_file():
                file = TensorFile.open(path)
                if self._describes(file, key, specs) and verified(file):
                    return file
        except (ValueError, KeyError, TypeError, OSError):
            pass
        if file is not None:
            file.close()
        self.discarded.append(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)  # if it stays, the new entry is not kept
        else:
            path.unlink(missing_ok=True)
        return None

    def _describes(self, file: TensorFile, key: str, specs: Specs | None) -> bool:
        """Whether ``file`` was computed from ``key``'s parts and holds ``specs``' tensors."""
        if file.metadata.get(SOURCE) != self._sources.get(key, file.metadata.get(SOURCE)):
            return False
        if specs is None:
            return True
        return sorted(file.names()) == sorted(specs) and all(
            (file.dtype(name), file.shape(name)) == (dtype, tuple(shape))
            for name, (dtype, shape) in specs.items()
        )


def _check_writable(given: Path, folder: Path) -> bool:
    """Raise WdiffError unless ``folder`` (under the cache folder ``given``) can be written;
    False when it cannot be made for lack of space (the cache is then off, with a warning)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        usable = os.access(folder, os.W_OK | os.X_OK)
        reason = "is not writable"
    except FileExistsError:
        usable, reason = False, "is a file, not a folder"
    except OSError as error:
        if error.errno in DISK_ERRORS and error.errno != errno.EROFS:
            return False
        usable, reason = False, f"cannot be created ({error.strerror})"
    if not usable:
        raise WdiffError(f"--cache-dir {given}: {reason}; give a writable folder, or --no-cache")
    return True
