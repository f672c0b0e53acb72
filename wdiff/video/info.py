"""What every video source shares: the constants, ``VideoInfo``, the reader protocol, and the
bundled sample clips."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from wdiff.errors import WdiffError
from wdiff.video.colour import Colour

if TYPE_CHECKING:
    import numpy as np

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_FOLDER_FPS = Fraction(24)
SAMPLE_CLIPS = {"builtin:bunny": "bunny.mp4"}
# White in uint16 frames (``frames(deep=True)``, ``VideoWriter.write``) as swscale (FFmpeg's
# converter, under PyAV) has it: 8-bit ``v`` is ``v << 8``, so white is 65280, not 65535.
# Measured with PyAV 18: limited-range Y=940 decodes to rgb48le 65283, rgb48le 65535 encodes
# to Y=943 and 65280 to 940, and rgb24 ``v`` gives the YUV of rgb48le ``v << 8`` but for
# rounding (tests/test_deep_colour.py holds it to that). Super-whites above it are kept.
DEEP_WHITE = 255 << 8


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows before decoding: sizes are as displayed (rotation applied)."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    rotation: int = 0  # counter-clockwise degrees applied to decoded frames (0, 90, 180, 270)
    has_audio: bool = False
    is_folder: bool = False
    video_start: float = 0.0  # seconds; audio is aligned to this
    colour: Colour | None = None  # YUV streams: how they map to RGB (None: RGB frames)
    pix_fmt: str | None = None  # the decoded pixel format (bit depth, chroma subsampling)
    codec: str | None = None  # the video decoder's name (h264, hevc, ffv1, ...)

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the decoded frames (8 when unknown): more than 8, and
        ``frames(deep=True)`` gives uint16 frames."""
        from wdiff.video.encoding import pixel_layout

        return pixel_layout(self.pix_fmt)[0]


def fps_text(fps: Fraction) -> str:
    """A frame rate as every file wdiff writes gives it (``wdiff info``, reports, ``eval``,
    flow files): the exact fraction ``"N/D"``, ``"25/1"`` included."""
    fps = Fraction(fps)
    return f"{fps.numerator}/{fps.denominator}"


def resolve_input(spec: str | Path) -> Path:
    """Map a path or a bundled sample name (``builtin:bunny``) to a path on disk."""
    text = str(spec)
    if text in SAMPLE_CLIPS:
        return Path(str(resources.files("wdiff.data").joinpath(SAMPLE_CLIPS[text])))
    if text.startswith("builtin:"):
        known = ", ".join(SAMPLE_CLIPS)
        raise WdiffError(f"{text}: no such bundled clip; the bundled clips are: {known}")
    return Path(text)


class VideoReader:
    """A video that can be read frame by frame, any number of times."""

    info: VideoInfo

    def frames(
        self, start: int = 0, count: int | None = None, *, deep: bool = False
    ) -> Iterator[np.ndarray]:
        """Yield RGB frames ``(H, W, 3)`` from ``start``, at most ``count`` of them: uint8, or
        with ``deep`` and a source of more than 8 bits (``info.bit_depth``) uint16 with white
        at ``DEEP_WHITE``. Callers that need uint8 (flow estimators, metrics, masks) leave
        ``deep`` off and get the decoder's own rounding to 8 bits."""
        raise NotImplementedError

    def chunks(
        self, size: int, start: int = 0, count: int | None = None, *, deep: bool = False
    ) -> Iterator[np.ndarray]:
        """Yield ``(n, H, W, 3)`` chunks of at most ``size`` frames (as ``frames``)."""
        import numpy as np

        batch: list[np.ndarray] = []
        for frame in self.frames(start, count, deep=deep):
            batch.append(frame)
            if len(batch) == size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)
