"""``wdiff inpaint --preview``: ``OUT.preview.mp4`` beside the output, each frame's masked input
(the hole tinted: what the model was asked to fill) on the left and the output on the right, at
the output's frame times, in its encoding, written atomically as the output is (a temporary
renamed into place with it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from wdiff.errors import WdiffError
from wdiff.video.info import CONTAINERS, DEEP_WHITE

MAGENTA = np.array([1, 0, 1], dtype=np.uint32)  # times white; half over the hole's pixels


def preview_path(output: Path) -> Path:
    """``OUT.preview.mp4`` beside the output ``OUT.mp4`` (or frame folder, or still)."""
    output = Path(output)
    base = output.with_suffix("") if output.suffix else output
    return base.parent / f"{base.name}.preview.mp4"


def check_preview_path(path: Path) -> None:
    """A preview is a video file: .mp4, .mkv or .mov."""
    if Path(path).suffix.lower() not in CONTAINERS:
        raise WdiffError(
            f"--preview-output {path}: a preview is a video; name an .mp4, .mkv or .mov file"
        )


def masked_input(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """uint8 or uint16 ``(H, W, 3)`` with the pixels of bool ``hole`` ``(H, W)`` tinted half
    magenta, in 8-bit steps (uint16: rounded down to a multiple of 256, so an 8-bit input
    is tinted as in an 8-bit preview)."""
    shown = frame.copy()
    deep = frame.dtype == np.uint16
    tint = MAGENTA * (DEEP_WHITE if deep else 255)
    tinted = (frame[hole].astype(np.uint32) + tint) // 2
    shown[hole] = ((tinted >> 8) << 8 if deep else tinted).astype(frame.dtype)
    return shown


def side_by_side(frame: np.ndarray, hole: np.ndarray, output: np.ndarray) -> np.ndarray:
    """The masked input beside the output: ``(H, 2W, 3)`` of the output's type (the input
    frame given in it too: uint8, or uint16 for outputs of more than 8 bits)."""
    return np.concatenate([masked_input(frame, hole), output], axis=1)


def kept_inputs(
    reader, masks, count: int, deep: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input frame, hole) of the first ``count`` frames: a resumed run's preview of the
    frames it kept, each input frame as the restore gives it to the preview (through its
    float tensor, uint16 when ``deep``)."""
    from wdiff.video import frames_to_tensor, tensor_to_frames

    inputs = (
        tensor_to_frames(frames_to_tensor(frame), deep)[0]
        for frame in reader.frames(0, count, deep=True)
    )
    return zip(inputs, masks.frames(0, count), strict=True)
