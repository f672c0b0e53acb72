"""The state of a run kept beside its output, so ``--resume`` continues after a crash or a kill.

``.OUT.resume/`` beside ``OUT`` holds every finished frame as a PNG (the exact frame that went to
the encoder: 8-bit, or 16-bit for outputs of more than 8 bits), and ``state.safetensors``: the
sampler's state after the last finished frame, the report's running state, and in its metadata
the run's fingerprint (settings, input digests, version), the report rows so far and a digest of
each kept frame's pixels (a frame changed since is refused when it is read back). Each file is
replaced atomically, the PNG before the state, so the state's frame count is always backed by
PNGs; a write that fails (a full disk) leaves the last state whole. The folder is removed when
the output is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from wdiff.errors import WdiffError
from wdiff.outputs import atomic_output, save_tensors
from wdiff.video import write_png

STATE_FILE = "state.safetensors"


def resume_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.resume")


class RunState:
    """The resume folder of one output; ``fingerprint`` says which run it belongs to."""

    def __init__(self, output: Path, fingerprint: dict):
        self.output = Path(output)
        self.folder = resume_folder(self.output)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
        self.digests: list[str] = []  # of the frames kept so far, by index

    def exists(self) -> bool:
        return (self.folder / STATE_FILE).is_file()

    def frames_done(self) -> int:
        """How many frames the kept state covers (0 without one), without loading its tensors."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.folder / STATE_FILE), framework="pt") as handle:
                return int((handle.metadata() or {}).get("frames_done", 0))
        except (SafetensorError, OSError, ValueError):
            return 0

    def load(self) -> tuple[int, dict[str, torch.Tensor], list[dict]]:
        """(frames done, state tensors, report rows); refuses state from another run."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = self.folder / STATE_FILE
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
            saved = json.loads(metadata["fingerprint"])
            done = int(metadata["frames_done"])
            rows = json.loads(metadata["rows"])
            digests = metadata.get("frame_digests", "")
        except (SafetensorError, OSError, KeyError, ValueError) as error:
            raise WdiffError(
                f"{path}: unreadable resume state ({error}); add --overwrite to start over"
            ) from error
        differ = sorted(
            key
            for key in set(saved) | set(self.fingerprint)
            if saved.get(key) != self.fingerprint.get(key)
        )
        if differ:
            raise WdiffError(
                f"{self.output}: the interrupted run differs in {', '.join(differ)}; resume with "
                "its settings, or start over with --overwrite (without --resume)"
            )
        missing = [i for i in range(done) if not self.frame_path(i).is_file()]
        if missing:
            raise WdiffError(
                f"{self.folder}: frame {missing[0]} is missing; add --overwrite to start over"
            )
        self.digests = digests.split(",")[:done] if digests else []
        return done, tensors, rows

    def frame_path(self, index: int) -> Path:
        return self.folder / f"frame_{index:06d}.png"

    def frames(self, count: int) -> Iterator[np.ndarray]:
        """The first ``count`` finished frames, RGB ``(H, W, 3)`` uint8 or uint16 as they were
        kept, each checked against the digest the state keeps (after ``load``)."""
        for index in range(count):
            path = self.frame_path(index)
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None or image.ndim != 3 or image.shape[2] != 3:
                raise WdiffError(f"{path}: unreadable; add --overwrite to start over")
            frame = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            kept = self.digests[index] if index < len(self.digests) else ""
            if kept and frame_digest(frame) != kept:
                raise WdiffError(
                    f"{path}: changed since this run kept it (its pixels differ from the resume "
                    "state's digest); put the kept frame back, or add --overwrite to start over"
                )
            yield frame

    def save_frame(self, index: int, frame: np.ndarray) -> None:
        """Keep finished frame ``index`` (uint8 or uint16 ``(H, W, 3)``); it counts as done once a
        ``save`` at or after it records the state."""
        self.folder.mkdir(exist_ok=True)
        target = self.frame_path(index)
        with atomic_output(target) as temporary:
            write_png(temporary, frame)
        del self.digests[index:]
        self.digests += [""] * (index - len(self.digests)) + [frame_digest(frame)]

    def save(
        self, index: int, frame: np.ndarray, tensors: dict[str, torch.Tensor], rows: list[dict]
    ) -> None:
        """Record finished frame ``index`` (uint8 or uint16 ``(H, W, 3)``) and the state after
        it."""

        self.save_frame(index, frame)
        metadata = {
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "frames_done": str(index + 1),
            "rows": json.dumps(rows),
            "frame_digests": ",".join(self.digests[: index + 1]),
        }
        # clones: the first frame's predictions are also the previous ones (shared storage);
        # contiguous ones: a frame cut from a batch keeps the batch's strides in a plain clone
        contiguous = {
            key: value.detach().cpu().clone(memory_format=torch.contiguous_format)
            for key, value in tensors.items()
        }
        save_tensors(contiguous, self.folder / STATE_FILE, metadata)

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def frame_digest(frame: np.ndarray) -> str:
    """blake2b of a uint8 or uint16 ``(H, W, 3)`` frame's size and pixels."""
    digest = hashlib.blake2b(str(frame.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def remove_stale_partials(output: Path) -> list[Path]:
    """Temporary outputs left by killed runs (``.NAME.partial-PID.EXT`` whose process is gone)."""
    output = Path(output)
    pattern = re.compile(rf"^\.{re.escape(output.stem)}\.partial-(\d+){re.escape(output.suffix)}$")
    removed = []
    for path in output.parent.glob(f".{output.stem}.partial-*"):
        match = pattern.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
