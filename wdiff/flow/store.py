"""Where computed rows (frame pairs) go as they are made: a cache entry, else a scratch file.

A ``RowSink`` writes rows in order into the cache's entry (a temporary beside it, renamed when
complete), or, with no cache, into an unnamed scratch file in ``folder`` (the system's
temporary folder by default) that disappears when closed. If the cache entry cannot be written
(a full disk, say) the rows so far are copied into a scratch file and the rest go there: the
cache only saves time, so a failed write costs the entry, not the run. A scratch file in a
given ``folder`` (beside a cache entry, say) that the disk refuses moves to the system's
temporary folder the same way. ``finish`` returns the rows as a ``TensorFile`` to read lazily.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import torch

from wdiff.errors import WdiffError
from wdiff.flow.cache import ChecksummedWriter, TensorCache
from wdiff.outputs import DISK_ERRORS, atomic_output
from wdiff.tensor_file import Specs, TensorFile


class RowSink:
    """Rows ``start..`` of every tensor in ``specs``, written in order (``write``); the cache
    entry ``key`` of ``cache`` when both are given, else a scratch file in ``folder``."""

    def __init__(
        self,
        specs: Specs,
        *,
        cache: TensorCache | None = None,
        key: str | None = None,
        folder: Path | None = None,
    ):
        self.specs, self.folder, self.cache = specs, folder, cache
        self.done = 0  # rows written so far, from the first
        self._entry = contextlib.ExitStack()  # the cache entry's atomic_output, while writing it
        self._path = cache.path(key) if cache is not None and key is not None else None
        self._metadata = cache.source(key) if self._path is not None else {}
        self._writer: ChecksummedWriter | None = None
        self._temporary: Path | None = None
        if self._path is not None:
            self._guarded(self._open_entry)
        if self._writer is None:
            self._in_scratch(lambda: self._move_to_scratch(None), moves=True)

    def __enter__(self) -> RowSink:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if error is not None:  # the rows' maker failed: drop the entry (atomic_output removes it)
            with contextlib.suppress(OSError, WdiffError):
                self._entry.__exit__(kind, error, trace)
            if self._writer is not None:
                self._writer.handle.close()

    def write(self, start: int, rows: dict[str, torch.Tensor]) -> None:
        """Rows ``start..start+n-1`` of every tensor (``name -> (n, ...)``), after those done."""
        if start != self.done:
            raise ValueError(f"rows from {start} written after {self.done}")
        if self._path is None or not self._guarded(lambda: self._writer.write(start, rows)):
            self._in_scratch(lambda: self._writer.write(start, rows))
        self.done += next(iter(rows.values())).shape[0]

    def finish(self) -> TensorFile:
        """The rows written, opened for reading (the entry once renamed into the cache)."""
        if self._path is not None and self._guarded(self._close_entry):
            return TensorFile(self._writer.handle, self._path)
        self._in_scratch(lambda: self._writer.finish())  # the writer in use at each try
        return TensorFile(self._writer.handle)

    def _open_entry(self) -> None:
        self._temporary = self._entry.enter_context(atomic_output(self._path))
        handle = open(self._temporary, "w+b")  # noqa: SIM115 - read from after the rename
        self._writer = ChecksummedWriter(handle, self.specs, self._metadata)

    def _in_scratch(self, action, moves: bool = False) -> None:
        """Run ``action`` on the scratch file; if the disk of a given ``folder`` refuses it,
        move the rows to a scratch file in the system's temporary folder and run it there
        (``moves``: ``action`` is itself that move)."""
        try:
            action()
        except OSError as error:
            if self.folder is None or error.errno not in DISK_ERRORS:
                raise
            self.folder = None
            if not moves:
                self._move_to_scratch(self._writer)
            action()

    def _close_entry(self) -> None:
        self._writer.finish()
        self._entry.close()  # renamed into the cache; the handle stays open and reads it

    def _guarded(self, action) -> bool:
        """Run ``action`` on the cache entry; if the disk refuses it, note why, move the rows
        done so far to a scratch file and return False."""
        try:
            action()
            return True
        except (OSError, WdiffError) as error:
            self.cache.unwritten.append(f"{self._path}: {error}")
            failure = error
        self._path = None
        failed = self._writer
        self._in_scratch(lambda: self._move_to_scratch(failed), moves=True)
        with contextlib.suppress(OSError, WdiffError):  # atomic_output removes the temporary
            self._entry.__exit__(type(failure), failure, failure.__traceback__)
        if self._temporary is not None:  # left by a failed rename
            self._temporary.unlink(missing_ok=True)
        return False

    def _move_to_scratch(self, failed: ChecksummedWriter | None) -> None:
        """A new scratch writer holding the rows done so far in ``failed``'s file (left as it
        is when this fails)."""
        handle = self._scratch()
        try:
            writer = ChecksummedWriter(handle, self.specs)
            if failed is not None:
                source = TensorFile(failed.handle)
                for row in range(self.done):
                    writer.write(
                        row, {name: source.read(name, row, row + 1) for name in self.specs}
                    )
        except BaseException:
            handle.close()
            raise
        if failed is not None:
            failed.handle.close()
        self._writer = writer

    def _scratch(self):
        return tempfile.TemporaryFile(dir=self.folder)
