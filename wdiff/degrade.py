"""A low-resolution copy of a video, a test input whose ground truth is the original (what
``wdiff degrade`` does)."""

from __future__ import annotations

from pathlib import Path

from wdiff.errors import WdiffError
from wdiff.outputs import check_output
from wdiff.tasks import SuperResolution
from wdiff.video import (
    VideoWriter,
    check_video_output,
    frames_to_tensor,
    open_video,
    resolve_input,
    tensor_to_frames,
)


def degrade_video(
    input: str | Path,
    output: Path,
    scale: int = 8,
    *,
    fps: float | None = None,
    overwrite: bool = False,
) -> tuple[int, int]:
    """Write ``input`` downscaled ``scale`` times (``SuperResolution.degrade``: area average)
    to ``output``, frame sizes first cropped to multiples of ``scale``; fps and audio are kept.
    Returns the output's (width, height)."""
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
    with VideoWriter(output, info.fps, crf=12, source=info) as writer:
        for frame in reader.frames():
            tensor = frames_to_tensor(frame[:height, :width])
            writer.write(tensor_to_frames(task.degrade(tensor)))
    return width // scale, height // scale
