"""Reading video files (mp4, mkv, mov, ...) with PyAV: probing, decoding (with the stream's
colour matrix and range), rotation, and the frame-size tag of files earlier wdiff versions
wrote padded to even."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
from av.video.reformatter import Interpolation

from wdiff.errors import WdiffError
from wdiff.video.colour import Colour
from wdiff.video.encoding import pixel_layout
from wdiff.video.info import DEEP_WHITE, VideoInfo, VideoReader

if TYPE_CHECKING:
    import numpy as np

_DECODE_INTERPOLATION = (
    Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
)
# Deep (rgb48le) frames: swscale's YUV -> rgb48le with FULL_CHR_H_INT scrambles subsampled
# chroma (errors of up to 58752 of 65535, measured with PyAV 18), so subsampled chroma is first
# interpolated bilinearly to 4:4:4 at 16 bits, which then needs no chroma interpolation.
_DEEP_INTERPOLATION = Interpolation.BILINEAR | Interpolation.ACCURATE_RND
_DEEP_444 = "yuv444p16le"
# Earlier wdiff wrote odd-sized frames padded to even with this tag: cropped back on reading.
_SIZE_TAG = "wdiff_frame_size"


class FileVideoReader(VideoReader):
    """A video file decoded with PyAV: exact frame rate, rotation honoured, audio detected."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.info, self._crop = _probe_file(self.path)
        colour = self.info.colour
        # decoded to RGB with the stream's own matrix and range (an untagged one's guessed)
        self._convert = (
            {"src_colorspace": colour.sws_matrix, "src_color_range": colour.sws_range}
            if colour is not None
            else {}
        )
        # chroma interpolated to full resolution with exact rounding: swscale's default
        # darkened 4:2:0 frames by 1-2 levels on average
        self._convert["interpolation"] = _DECODE_INTERPOLATION
        self._deep_convert = self._convert | {"interpolation": _DEEP_INTERPOLATION}
        self._subsampled = colour is not None and pixel_layout(self.info.pix_fmt)[1] != "444"

    def frames(
        self, start: int = 0, count: int | None = None, *, deep: bool = False
    ) -> Iterator[np.ndarray]:
        deep = deep and self.info.bit_depth > 8
        end = self.info.frame_count if count is None else min(self.info.frame_count, start + count)
        index = 0
        with _open_container(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    if index >= end:
                        return
                    if index >= start:
                        yield self._to_array(frame, deep)
                    index += 1
            except av.error.FFmpegError as error:
                raise WdiffError(
                    f"{self.path}: damaged at frame {index} ({_reason(error)}); "
                    "re-encode or repair the file"
                ) from error
        if index < end:
            raise WdiffError(
                f"{self.path}: truncated: the header promises {self.info.frame_count} frames "
                f"but only {index} decode; re-encode or repair the file"
            )

    def _to_array(self, frame: av.VideoFrame, deep: bool) -> np.ndarray:
        # one swscale thread: see VideoWriter._write_one
        if deep:
            array = self._deep_array(frame)
        else:
            array = frame.to_ndarray(format="rgb24", threads=1, **self._convert)
        if self._crop is not None:
            array = array[: self._crop[1], : self._crop[0]]
        if self.info.rotation:
            import numpy as np

            array = np.ascontiguousarray(np.rot90(array, k=self.info.rotation // 90))
        return array

    def _deep_array(self, frame: av.VideoFrame) -> np.ndarray:
        """uint16 RGB with white at ``DEEP_WHITE``, as the writer takes it. Limited-range YUV
        is swscale's own (white 65283); full-range YUV too (its 10-bit white decodes to
        65472, and swscale's full-range conversions are not exact inverses: a round trip
        moves Y by up to 3 levels, measured). RGB sources (gbrp10le, 16-bit PNG) decode with
        white at 65535 and are rescaled."""
        if self._subsampled:
            colour = self.info.colour
            same = {
                "src_colorspace": colour.sws_matrix,
                "dst_colorspace": colour.sws_matrix,
                "src_color_range": colour.sws_range,
                "dst_color_range": colour.sws_range,
            }
            frame = frame.reformat(
                format=_DEEP_444, interpolation=_DEEP_INTERPOLATION, threads=1, **same
            )
        array = frame.to_ndarray(format="rgb48le", threads=1, **self._deep_convert)
        if self.info.colour is not None:
            return array
        import numpy as np

        return ((array.astype(np.uint32) * DEEP_WHITE + 32767) // 65535).astype(np.uint16)


def ffmpeg_name(path: Path | str) -> str:
    """``path`` as FFmpeg should get it: absolute, so that a name such as ``take-2:a.mp4`` is
    not read as a URL of protocol ``take-2``."""
    return str(Path(path).absolute())


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().rstrip(".")


@contextlib.contextmanager
def _open_container(path: Path) -> Iterator[av.container.InputContainer]:
    try:
        container = av.open(ffmpeg_name(path), metadata_errors="ignore")
    except av.error.EOFError as error:
        raise WdiffError(
            f"{path}: ends before any video frame (no frames, or truncated); "
            "give a video with frames in it"
        ) from error
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise WdiffError(
            f"{path}: not a readable video ({_reason(error)}); "
            "give an MP4, MKV or MOV file or a folder of PNG/JPG frames"
        ) from error
    try:
        yield container
    finally:
        container.close()


def _probe_file(path: Path) -> tuple[VideoInfo, tuple[int, int] | None]:
    """The video's info, and the true (width, height) when wdiff stored it padded to even."""
    if path.stat().st_size == 0:
        raise WdiffError(f"{path}: the file is empty; give a video file with frames in it")
    with _open_container(path) as container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise WdiffError(
                f"{path}: has no video stream (it holds {kinds}); give a file with video in it"
            )
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise WdiffError(f"{path}: the video stream has no frame rate; re-encode the file")
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as error:
            raise WdiffError(
                f"{path}: the first frame does not decode ({_reason(error)}); "
                "re-encode or repair the file"
            ) from error
        if first is None:
            raise WdiffError(f"{path}: has no video frames; give a video with frames in it")
        rotation = int(round(first.rotation or 0)) % 360
        if rotation % 90:
            raise WdiffError(
                f"{path}: rotation of {rotation} degrees is not supported; "
                "re-encode the file without rotation metadata"
            )
        width, height = first.width, first.height
        crop = _size_tag(container)
        if crop is not None:
            width, height = crop
        if rotation in (90, 270):
            width, height = height, width
        frame_count = stream.frames or 0
        start_time = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        has_audio = bool(container.streams.audio)
        pix_fmt, colour = _pixels(first)
    if frame_count <= 0:
        frame_count = _count_packets(path)
    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=Fraction(rate),
        frame_count=frame_count,
        rotation=rotation,
        has_audio=has_audio,
        video_start=start_time,
        colour=colour,
        pix_fmt=pix_fmt,
        codec=stream.codec_context.name,
    )
    return info, crop


def _pixels(frame: av.VideoFrame) -> tuple[str, Colour | None]:
    """The frame's pixel format (``yuvj`` named as the ``yuv`` it is) and, for YUV, its
    colour; full range is a tag or a ``yuvj`` format."""
    name = frame.format.name
    full = frame.color_range == 2 or name.startswith("yuvj")
    if name.startswith("yuvj"):
        name = "yuv" + name[4:]
    if frame.format.is_rgb or not name.startswith(("yuv", "nv", "p0", "p2", "p4")):
        return name, None
    tags = (frame.colorspace, frame.color_primaries, frame.color_trc)
    return name, Colour.from_tags(*tags, full, (frame.width, frame.height))


def _size_tag(container: av.container.InputContainer) -> tuple[int, int] | None:
    for key, value in container.metadata.items():
        if key.lower() == _SIZE_TAG:
            match = re.fullmatch(r"(\d+)x(\d+)", value.strip())
            if match:
                return int(match[1]), int(match[2])
    return None


def _count_packets(path: Path) -> int:
    """Frame count for containers that do not store it (Matroska): count video packets."""
    with _open_container(path) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
