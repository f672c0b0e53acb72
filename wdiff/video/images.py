"""Frame folders and single images: 8-bit RGB PNG/JPG and 16-bit RGB PNG in, PNG out."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from wdiff.errors import WdiffError
from wdiff.video.info import (
    DEEP_WHITE,
    DEFAULT_FOLDER_FPS,
    IMAGE_SUFFIXES,
    VideoInfo,
    VideoReader,
)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """PNG/JPG files in ``folder`` in natural order (frame2 before frame10)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=_natural_key)


class FrameFolderReader(VideoReader):
    """A folder of RGB PNG/JPG frames, all the same size, read in natural order. 16-bit PNGs
    (the first frame says) make a 16-bit source: ``pix_fmt`` rgb48le, uint16 frames with
    ``deep``."""

    def __init__(self, folder: Path, fps: Fraction = DEFAULT_FOLDER_FPS):
        self.folder = Path(folder)
        self.files = list_images(self.folder)
        if not self.files:
            raise WdiffError(
                f"{self.folder}: the folder holds no PNG or JPG frames; "
                "put frames named in order (frame_0001.png, ...) in it"
            )
        width, height = _image_header(self.files[0])
        for file in self.files[1:]:
            size = _image_header(file)
            if size != (width, height):
                raise WdiffError(
                    f"{file}: frame size {size[0]}x{size[1]} differs from "
                    f"{self.files[0].name}'s {width}x{height}; give frames of one size"
                )
        if fps <= 0:
            raise WdiffError(f"{self.folder}: --fps must be positive, got {fps}")
        self.info = VideoInfo(
            path=self.folder,
            width=width,
            height=height,
            fps=Fraction(fps),
            frame_count=len(self.files),
            is_folder=True,
            pix_fmt="rgb48le" if _png_bit_depth(self.files[0]) == 16 else None,
        )

    def frames(
        self, start: int = 0, count: int | None = None, *, deep: bool = False
    ) -> Iterator[np.ndarray]:
        stop = len(self.files) if count is None else min(len(self.files), start + count)
        deep = deep and self.info.bit_depth > 8
        for file in self.files[start:stop]:
            yield read_rgb_image(file, deep)


def _image_header(file: Path) -> tuple[int, int]:
    """(width, height) of an image, reading only its header; checks the pixel format."""
    with _reading_image(file), Image.open(file) as image:
        mode, size = image.mode, image.size
    _check_image_mode(file, mode)
    return size


def _check_image_mode(file: Path, mode: str) -> None:
    if mode in ("L", "LA", "1"):
        raise WdiffError(
            f"{file}: grayscale frame; wdiff reads RGB frames: convert the frames to RGB "
            "(e.g. `mogrify -type TrueColor *.png`)"
        )
    if mode.startswith("I") or mode == "F":
        raise WdiffError(
            f"{file}: 16-bit grayscale or float frame ({mode}); wdiff reads 8-bit or 16-bit "
            "RGB frames: convert them to RGB (e.g. `mogrify -type TrueColor *.png`)"
        )
    if mode in ("RGBA", "PA", "La", "RGBa"):
        raise WdiffError(
            f"{file}: frame has an alpha channel; wdiff reads RGB frames: flatten the alpha "
            "(e.g. `mogrify -alpha off *.png`)"
        )


def read_rgb_image(file: Path, deep: bool = False) -> np.ndarray:
    """Decode one RGB image (8-bit, or 16-bit PNG) to ``(H, W, 3)`` uint8, rounded; with
    ``deep``, uint16 with white at ``DEEP_WHITE`` (8-bit ``v`` as ``v << 8``). Other formats
    are errors."""
    data = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise WdiffError(f"{file}: not a readable image; replace the frame")
    if data.dtype not in (np.uint8, np.uint16):
        _check_image_mode(file, "F")
    if data.ndim == 2 or data.shape[2] == 1:
        _check_image_mode(file, "L")
    if data.shape[2] == 4:
        _check_image_mode(file, "RGBA")
    rgb = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    if data.dtype == np.uint8:
        return rgb.astype(np.uint16) << 8 if deep else rgb
    wide = rgb.astype(np.uint32)
    if deep:
        return ((wide * DEEP_WHITE + 32767) // 65535).astype(np.uint16)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _png_bit_depth(file: Path) -> int:
    """Bits per sample a PNG's header gives (8 for other images)."""
    if file.suffix.lower() != ".png":
        return 8
    with open(file, "rb") as handle:
        header = handle.read(26)  # signature, IHDR length and type, width, height, depth
    return header[24] if len(header) == 26 and header[12:16] == b"IHDR" else 8


def write_png(path: Path, frame: np.ndarray) -> None:
    """Write an RGB frame ``(H, W, 3)`` as PNG (fast compression): uint8 as 8-bit, uint16 as
    16-bit. A full disk raises OSError (ENOSPC), which ``atomic_output`` turns into one line;
    OpenCV's writer would print libpng's own message on stderr and only return False, so
    16-bit frames (which Pillow does not write in RGB) are encoded in memory first."""
    if frame.dtype == np.uint8:
        Image.fromarray(frame, mode="RGB").save(path, format="PNG", compress_level=1)
        return
    if frame.dtype != np.uint16:
        raise ValueError(f"expected a uint8 or uint16 frame, got {frame.dtype}")
    bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
    done, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not done:
        raise WdiffError(f"{path}: could not encode the frame as PNG")
    Path(path).write_bytes(data.tobytes())


@contextlib.contextmanager
def _reading_image(file: Path) -> Iterator[None]:
    """PIL's errors opening ``file`` -> one WdiffError (a header claiming more than PIL's
    MAX_IMAGE_PIXELS x 2, a decompression bomb, included)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError as error:
        raise WdiffError(
            f"{file}: claims more pixels than wdiff reads ({error}); replace it"
        ) from error
    except (OSError, ValueError, SyntaxError) as error:
        raise WdiffError(f"{file}: not a readable image ({error}); replace it") from error
