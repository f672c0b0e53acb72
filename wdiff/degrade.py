"""A low-resolution copy of a video, a test input whose ground truth is the original (what
``wdiff degrade`` does), and the crop that makes the original match its restorations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wdiff.errors import WdiffError
from wdiff.outputs import check_output
from wdiff.tasks import SuperResolution
from wdiff.video import (
    VideoReader,
    VideoWriter,
    check_video_output,
    frames_to_tensor,
    open_video,
    resolve_input,
    tensor_to_frames,
)

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Degraded:
    """What ``degrade_video`` wrote: the output's (width, height), as every tool reads it, and
    the part of the input it came from (the input cropped at the top left)."""

    size: tuple[int, int]
    cropped_from: tuple[int, int]
    cropped_to: tuple[int, int]


def degrade_video(
    input: str | Path,
    output: Path,
    scale: int = 8,
    *,
    fps: float | None = None,
    overwrite: bool = False,
    warn=None,
) -> Degraded:
    """Write ``input`` downscaled ``scale`` times (``SuperResolution.degrade``: area average)
    to ``output``, frames first cropped at the top left to multiples of ``scale``; fps, frame
    times, colour, bit depth, audio and subtitles are kept (``warn`` hears what was not)."""
    source = resolve_input(input)
    check_video_output(output)
    check_output(output, [source], overwrite)
    reader = open_video(source, fps=fps)
    check_video_output(output, reader.info.frame_count)
    info = reader.info
    height, width = info.height // scale * scale, info.width // scale * scale
    if not height or not width:
        raise WdiffError(f"{source}: {info.width}x{info.height} is smaller than --scale {scale}")
    task = SuperResolution(scale)
    with VideoWriter(output, info.fps, crf=12, source=info, warn=warn) as writer:
        deep = writer.bit_depth((width // scale, height // scale)) > 8  # 10-bit stays 10-bit
        for frame in reader.frames(deep=True):
            tensor = frames_to_tensor(frame[:height, :width])
            writer.write(tensor_to_frames(task.degrade(tensor), deep))
    return Degraded((width // scale, height // scale), info.size, (width, height))


def degrade_scale(reference: tuple[int, int], size: tuple[int, int]) -> int | None:
    """The ``wdiff degrade --scale`` (2 or more) whose crop turns a ``reference``-sized video
    into ``size`` (both (width, height)), or None when none does (or they are equal)."""
    if reference == size or size[0] > reference[0] or size[1] > reference[1]:
        return None
    for scale in range(2, max(reference) + 1):
        if (reference[0] // scale * scale, reference[1] // scale * scale) == size:
            return scale
    return None


class CroppedReader(VideoReader):
    """A reader's frames cropped at the top left to ``size`` (width, height), as ``wdiff
    degrade`` crops them."""

    def __init__(self, reader: VideoReader, size: tuple[int, int]):
        self._reader = reader
        self.info = replace(reader.info, width=size[0], height=size[1])

    def frames(
        self, start: int = 0, count: int | None = None, *, deep: bool = False
    ) -> Iterator[np.ndarray]:
        width, height = self.info.size
        for frame in self._reader.frames(start, count, deep=deep):
            yield frame[:height, :width]
