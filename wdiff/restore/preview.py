"""``wdiff inpaint --preview``: ``OUT.preview.mp4`` beside the output, each frame's masked input
(the hole tinted: what the model was asked to fill) on the left and the output on the right, at
the output's frame times, in its encoding, written atomically as the output is (a temporary
renamed into place with it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from wdiff.errors import WdiffError
from wdiff.video.info import CONTAINERS

TINT = np.array([255, 0, 255], dtype=np.uint16)  # magenta, half over the hole's pixels


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
    """uint8 ``(H, W, 3)`` with the pixels of bool ``hole`` ``(H, W)`` tinted half magenta."""
    shown = frame.copy()
    shown[hole] = ((frame[hole].astype(np.uint16) + TINT) // 2).astype(np.uint8)
    return shown


def side_by_side(frame: np.ndarray, hole: np.ndarray, output: np.ndarray) -> np.ndarray:
    """The masked input beside the output: uint8 ``(H, 2W, 3)``."""
    return np.concatenate([masked_input(frame, hole), output], axis=1)


def kept_inputs(reader, masks, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input frame, hole) of the first ``count`` frames: a resumed run's preview of the
    frames it kept."""
    return zip(reader.frames(0, count), masks.frames(0, count), strict=True)
