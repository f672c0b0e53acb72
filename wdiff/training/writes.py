"""Writes that fail as one line: a full disk, a quota or a read-only folder becomes a
``WdiffError`` naming the file, whichever library (torch, safetensors, PIL) did the writing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from wdiff.errors import WdiffError

_WRITE_FAILURES = ("no space left", "os error", "i/o error", "file write failed", "quota")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write of ``path`` (disk full, read-only, ...) into a WdiffError naming it.
    torch.save and safetensors wrap the OSError in their own exceptions: those count when
    their message says so or when a small probe write beside ``path`` fails too."""
    try:
        yield
    except WdiffError:
        raise
    except OSError as error:
        raise WdiffError(_cannot_write(path, error.strerror or str(error))) from error
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        hinted = any(word in message.lower() for word in _WRITE_FAILURES)
        reason = message if hinted else _probe_write(Path(path).parent)
        if reason is None:
            raise
        raise WdiffError(_cannot_write(path, reason)) from error


def _cannot_write(path: Path, reason: str) -> str:
    return f"{path}: cannot write ({reason}); free space or choose another --out"


def _probe_write(folder: Path) -> str | None:
    """Why a 64 KiB file cannot be written in ``folder``, or None when it can."""
    if not folder.is_dir():
        return None
    probe = folder / f".wdiff-probe-{os.getpid()}"
    try:
        with probe.open("wb") as handle:
            handle.write(bytes(65536))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return error.strerror or str(error)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def write_atomic(target: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` beside ``target``, then rename it onto ``target``: a failed write
    leaves ``target`` as it was and raises WdiffError naming it."""
    from wdiff.outputs import atomic_output

    # the inner writing() sees the failure while the temporary still holds its disk space
    with writing(target), atomic_output(target) as temporary, writing(target):
        write(temporary)
