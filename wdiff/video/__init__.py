"""Streaming video input/output over PyAV, frame folders, and inpainting masks.

Frames on disk and in this module are uint8 RGB arrays ``(H, W, 3)`` (a chunk: ``(N, H, W, 3)``),
or, read with ``frames(deep=True)`` from a source of more than 8 bits (10-bit video, 16-bit PNG)
and written to an output of more than 8 bits, uint16 ones with white at ``DEEP_WHITE`` (65280,
swscale's scale); :func:`frames_to_tensor` and :func:`tensor_to_frames` convert to and from the
pipeline's float ``(N, 3, H, W)`` tensors in ``[-1, 1]``. Nothing here holds a whole video in
memory: readers decode on demand, writers encode frame by frame and copy the input's audio
alongside.

The names below are imported from their modules when first used (PEP 562), so that reading a
file's header (``open_video(...).info``, ``wdiff info``) loads PyAV alone: not OpenCV, Pillow
or NumPy.
"""

from __future__ import annotations

from fractions import Fraction
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wdiff.errors import WdiffError
from wdiff.video.info import (
    CONTAINERS,
    DEEP_WHITE,
    DEFAULT_FOLDER_FPS,
    IMAGE_SUFFIXES,
    SAMPLE_CLIPS,
    VideoInfo,
    VideoReader,
    fps_text,
    resolve_input,
)

if TYPE_CHECKING:
    from wdiff.video.container import FileVideoReader
    from wdiff.video.images import FrameFolderReader, list_images, read_rgb_image, write_png
    from wdiff.video.masks import MaskReader
    from wdiff.video.tensors import frames_to_tensor, tensor_to_frames
    from wdiff.video.writer import VideoWriter, check_video_output

_LAZY = {
    "FileVideoReader": "container",
    "FrameFolderReader": "images",
    "list_images": "images",
    "read_rgb_image": "images",
    "write_png": "images",
    "MaskReader": "masks",
    "frames_to_tensor": "tensors",
    "tensor_to_frames": "tensors",
    "VideoWriter": "writer",
    "check_video_output": "writer",
}


def __getattr__(name: str) -> Any:
    """``wdiff.video.NAME`` for the names in ``_LAZY``: imported from its module on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def open_video(spec: str | Path, fps: Fraction | float | None = None) -> VideoReader:
    """Open a video file (mp4, mkv, mov, ...) or a folder of PNG/JPG frames for streaming.

    ``fps`` applies to frame folders (default 24); a video file keeps its own rate.
    Raises WdiffError naming the file and the fix when it cannot be read.
    """
    path = resolve_input(spec)
    if not path.exists():
        raise WdiffError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        from wdiff.video.images import FrameFolderReader

        if isinstance(fps, float):  # 29.97 as typed (2997/100), not its binary fraction
            fps = Fraction(repr(fps))
        return FrameFolderReader(path, Fraction(fps) if fps else DEFAULT_FOLDER_FPS)
    from wdiff.video.container import FileVideoReader

    return FileVideoReader(path)


__all__ = [
    "CONTAINERS",
    "DEEP_WHITE",
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "SAMPLE_CLIPS",
    "FileVideoReader",
    "FrameFolderReader",
    "MaskReader",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "check_video_output",
    "fps_text",
    "frames_to_tensor",
    "list_images",
    "open_video",
    "read_rgb_image",
    "resolve_input",
    "tensor_to_frames",
    "write_png",
]
