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

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Yield uint8 RGB frames ``(H, W, 3)`` from ``start``, at most ``count`` of them."""
        raise NotImplementedError

    def chunks(self, size: int, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``(n, H, W, 3)`` uint8 chunks of at most ``size`` frames."""
        import numpy as np

        batch: list[np.ndarray] = []
        for frame in self.frames(start, count):
            batch.append(frame)
            if len(batch) == size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)
