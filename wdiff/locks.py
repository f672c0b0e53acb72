"""One run per output: an advisory lock beside the output, held for the whole run.

``.OUT.lock`` beside ``OUT`` is locked with ``fcntl.flock`` and holds the holder's process id.
It covers the output, its report files and its resume folder ``.OUT.resume/``: a second run on
the same output (``--overwrite`` or not) is refused at once, naming the first one's process.
The kernel drops a flock when its process dies, so a file left by a killed run is free and is
taken over (the caller is told). The file is removed when the lock is released; a refused run
neither creates nor writes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from wdiff.errors import WdiffError
from wdiff.outputs import disk_error


def lock_path(output: Path) -> Path:
    """``.OUT.lock`` beside ``output``."""
    output = Path(output)
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def output_lock(output: Path, note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the lock of ``output`` until the block ends; yields the lock file's path.

    Raises WdiffError naming the other run's process id when another process holds it.
    ``note`` is told (one line) when a lock left by a run that is gone is taken over.
    """
    path = lock_path(output)
    handle, left_by = _acquire(path, output)
    try:
        if left_by and left_by != str(os.getpid()) and note is not None:
            note(f"{output}: took over the lock of process {left_by}, which ended without it")
        try:
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        except OSError as error:
            mapped = disk_error(path, error)
            if mapped is error:
                raise
            raise mapped from error
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still held: a waiting run then locks a new file
        os.close(handle)


def _acquire(path: Path, output: Path) -> tuple[int, str]:
    """Open and flock ``path``: (its descriptor, the process id written there before, or "")."""
    while True:
        existed = path.exists()
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise WdiffError(
                f"{path}: cannot create the lock of {output.name} ({error.strerror}); "
                "choose another -o"
            ) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(handle, 64, 0).decode(errors="replace").strip()
            os.close(handle)
            who = f"process {other}" if other.isdigit() else "another process"
            raise WdiffError(
                f"{output}: another wdiff run ({who}) is writing it; wait for it to finish or "
                "choose another -o"
            ) from None
        # the holder may have finished (removed the file) between our open and flock
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        opened = os.fstat(handle)
        if current is not None and (current.st_ino, current.st_dev) == (
            opened.st_ino,
            opened.st_dev,
        ):
            left = os.pread(handle, 64, 0).decode(errors="replace").strip() if existed else ""
            return handle, left if left.isdigit() else ""
        os.close(handle)


@contextlib.contextmanager
def output_locks(
    outputs: list[Path | None], note: Callable[[str], None] | None = None
) -> Iterator[None]:
    """``output_lock`` on each of ``outputs`` (None skipped) for the block: a command that
    writes several files (``flow``'s picture, ``eval``'s CSV) holds one lock per file."""
    with contextlib.ExitStack() as stack:
        for output in dict.fromkeys(Path(o) for o in outputs if o is not None):
            stack.enter_context(output_lock(output, note))
        yield
