"""Output paths: refuse to clobber, never touch the input, write to a temporary and rename.

Every file or folder wdiff produces goes through :func:`atomic_output`, so an interrupted or
failed run leaves the target as it was (absent, or the old file when ``--overwrite`` was given).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from wdiff.errors import DiskFull, WdiffError

# Write failures the user fixes by making room or writing elsewhere, not bugs.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def check_output(output: Path, inputs: Iterable[Path] = (), overwrite: bool = False) -> Path:
    """Validate an output path before any work starts; return it as given.

    Raises WdiffError if it is one of the inputs, exists without ``overwrite``, or its folder
    does not exist.
    """
    output = Path(output)
    resolved = output.resolve()
    for source in inputs:
        if source is not None and Path(source).resolve() == resolved:
            raise WdiffError(f"{output}: the output path is the input; choose another path with -o")
    if output.exists() and not overwrite:
        raise WdiffError(f"{output}: already exists; pass --overwrite to replace it")
    if output.exists() and output.is_dir() != _wants_folder(output):
        kind = "a folder" if output.is_dir() else "a file"
        raise WdiffError(f"{output}: exists and is {kind}; remove it or choose another path")
    if not output.parent.is_dir():
        raise WdiffError(f"{output}: folder {output.parent} does not exist; create it first")
    if not os.access(output.parent, os.W_OK | os.X_OK):  # false on a read-only mount, for root too
        raise WdiffError(
            f"{output}: folder {output.parent} is not writable (read-only?); choose another path"
        )
    return output


def default_output(source: Path, suffix: str) -> Path:
    """``clip.mp4`` -> ``clip<suffix>`` beside it; for a bundled clip, in the current folder."""
    from wdiff.video.info import SAMPLE_CLIPS

    folder = (
        Path.cwd()
        if source.parent.name == "data" and source.name in SAMPLE_CLIPS.values()
        else source.parent
    )
    return (
        folder / f"{source.stem if source.suffix and not source.is_dir() else source.name}{suffix}"
    )


def check_suffix(path: Path, suffix: str, option: str) -> None:
    """Refuse an output named by ``option`` that does not end in ``suffix`` (e.g. .json)."""
    if path.suffix.lower() != suffix:
        raise WdiffError(f"{path}: {option} writes a {suffix} file; give a name ending {suffix}")


def _wants_folder(output: Path) -> bool:
    return output.suffix == ""


def temporary_sibling(target: Path) -> Path:
    """A hidden path beside ``target`` with the same extension, unique to this process."""
    target = Path(target)
    return target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file or folder is removed and ``target`` is left untouched.
    A folder target (no extension) replaces an existing folder as a whole.
    """
    target = Path(target)
    temporary = temporary_sibling(target)
    _remove(temporary)
    try:
        yield temporary
        if not temporary.exists():
            raise RuntimeError(f"{temporary} was not written")
        _rename(temporary, target)
    except OSError as error:
        _remove(temporary)
        mapped = disk_error(target, error)
        if mapped is error:
            raise
        raise mapped from error
    except BaseException:
        _remove(temporary)
        raise


def disk_error(target: Path, error: OSError) -> OSError | DiskFull:
    """``error`` writing ``target`` as a ``DiskFull`` when it is a full disk, quota or read-only
    file system (one line naming ``target`` and the fix), else ``error`` itself."""
    if error.errno not in DISK_ERRORS:
        return error
    return DiskFull(target, os.strerror(error.errno))


def _rename(temporary: Path, target: Path) -> None:
    if temporary.is_dir() and target.exists():
        trash = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, trash)
        os.replace(temporary, target)
        _remove(trash)
    else:
        os.chmod(temporary, 0o666 & ~_umask())  # some writers create 0600 temporaries
        os.replace(temporary, target)  # onto a folder: IsADirectoryError, the temporary removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def save_tensors(tensors: dict, target: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> contiguous CPU tensor) as a safetensors file, atomically; a
    full disk is a WdiffError naming ``target`` (safetensors reports it as its own error)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    with atomic_output(target) as temporary:
        try:
            save_file(tensors, str(temporary), metadata=metadata)
        except SafetensorError as error:
            # "... (os error 28)", or in older versions "IoError(Os { code: 28, ... })"
            found = re.search(r"os error (\d+)|Os \{ code: (\d+)", str(error))
            if found is None:
                raise
            number = int(found[1] or found[2])
            raise OSError(number, os.strerror(number), str(temporary)) from error
