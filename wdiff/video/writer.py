"""Writing frames: H.264, HEVC or FFV1 in mp4/mkv/mov with the source's colour, bit depth,
frame times, audio and subtitles; PNG folders; single images."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from wdiff.errors import WdiffError
from wdiff.outputs import atomic_output
from wdiff.video.colour import Colour, default_colour
from wdiff.video.container import ffmpeg_name
from wdiff.video.encoding import Encoding, check_choice, choose_encoding
from wdiff.video.images import write_png
from wdiff.video.info import CONTAINERS, IMAGE_SUFFIXES, VideoInfo
from wdiff.video.streams import StreamCopier
from wdiff.video.tensors import to_uint8
from wdiff.video.timing import FrameTimes, frame_times
from wdiff.video.x264 import x264_cpu_options, x265_options


def check_video_output(path: Path, frames: int | None = None) -> None:
    """Raise WdiffError unless ``path`` names a container we write, a folder for PNGs, or a
    PNG/JPG image for a single frame (``frames``: the input's frame count, when known)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if frames is not None and frames != 1:
            raise WdiffError(
                f"{path}: an image holds one frame and the input has {frames}; name an .mp4, "
                ".mkv or .mov file, or a folder without extension for PNG frames"
            )
    elif suffix and suffix not in CONTAINERS:
        raise WdiffError(
            f"{path}: unknown output type {path.suffix!r}; use .mp4, .mkv or .mov, a folder "
            "name without extension for PNG frames, or .png/.jpg for a single frame"
        )


class VideoWriter:
    """Encode frames to a video (mp4/mkv/mov), a folder of PNGs, or one frame to a PNG/JPG.

    With ``source`` (the input's ``VideoInfo``) the output keeps, from its frame
    ``start_frame`` on: the colour matrix, primaries, transfer and range (tagged, and RGB
    converted to YUV with that matrix and range); the bit depth and chroma subsampling where
    the encoder allows (``encoding.choose_encoding``: ``codec``, ``pix_fmt`` override); each
    frame's time (a variable frame rate stays variable); every audio and subtitle stream with
    its tags (``streams.StreamCopier``), cut at the video's end. Without one (or from RGB):
    8-bit 4:2:0 H.264 at ``fps``, in the colour an untagged stream of its size is read with
    (``colour.default_colour``), tagged; a frame folder of 16-bit PNGs keeps its depth (10-bit
    4:4:4). Odd sizes are stored as they are (4:4:4 for H.264/HEVC). An output of more than 8
    bits (``bit_depth``) is best given uint16 frames. ``warn`` hears what could not be kept
    as it was.

    Writes go to a temporary file beside ``path`` that :meth:`close` renames onto it; on an
    exception inside ``with VideoWriter(...)`` the temporary is removed.
    """

    def __init__(
        self,
        path: Path,
        fps: Fraction,
        *,
        crf: int = 18,
        source: VideoInfo | None = None,
        start_frame: int = 0,
        codec: str | None = None,
        pix_fmt: str | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        self.path = Path(path)
        self.fps = Fraction(fps)
        self.crf = crf
        self.frame_count = 0
        self.warnings: list[str] = []
        self.encoding: Encoding | None = None
        self._is_folder = self.path.suffix == ""
        self._is_image = self.path.suffix.lower() in IMAGE_SUFFIXES
        check_video_output(self.path)
        if not 0 <= crf <= 51:
            raise WdiffError(f"--crf must be between 0 and 51, got {crf}")
        if self.path.suffix.lower() in CONTAINERS:
            check_choice(CONTAINERS[self.path.suffix.lower()], codec, pix_fmt)
        self._source = source if source is not None and not source.is_folder else None
        self._pixels_of = source  # whose depth and chroma the output keeps (folders too)
        self._start = start_frame
        self._codec, self._pix_fmt = codec, pix_fmt
        self._warn = warn
        self.colour: Colour | None = source.colour if source else None  # set at the first frame
        self._atomic = atomic_output(self.path)
        self._temporary: Path | None = None
        self._container = None
        self._stream = None
        self._streams: StreamCopier | None = None
        self._times: FrameTimes | None = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> VideoWriter:
        self._temporary = self._atomic.__enter__()
        if self._is_folder:
            self._temporary.mkdir()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        finishing_error = None
        if kind is None:
            try:
                self._finish()
            except BaseException as error:  # a full disk at the last packets, say
                kind, value, traceback = type(error), error, error.__traceback__
                finishing_error = error
        if kind is not None:
            with contextlib.suppress(OSError, av.error.FFmpegError):  # closing flushes too
                self._close_container()
        # the temporary is removed on an error; a full disk becomes one line (atomic_output)
        if not self._atomic.__exit__(kind, value, traceback) and finishing_error is not None:
            raise finishing_error

    def write(self, frames: np.ndarray) -> None:
        """Append an RGB frame ``(H, W, 3)`` or chunk ``(N, H, W, 3)``: uint8, or uint16 for
        more than 8 bits of precision (white is ``video.info.DEEP_WHITE``, 65280: what
        ``frames(deep=True)`` and ``tensor_to_frames(..., deep=True)`` give)."""
        if self._temporary is None:
            raise RuntimeError("use VideoWriter as a context manager")
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"expected uint8 or uint16 (N, H, W, 3) frames, got {frames.dtype} {frames.shape}"
            )
        for frame in frames:
            self._write_one(np.ascontiguousarray(frame))

    def _write_one(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        if self._size is None:
            self._size = (width, height)
            if not (self._is_folder or self._is_image):
                self._open_container(width, height)
        elif self._size != (width, height):
            raise ValueError(f"frame size changed from {self._size} to {(width, height)}")
        if self._is_image or self._is_folder:
            self._write_image(to_uint8(frame))
        else:
            self._encode(frame)
        self.frame_count += 1

    def _write_image(self, frame: np.ndarray) -> None:
        if self._is_folder:
            write_png(self._temporary / f"frame_{self.frame_count:06d}.png", frame)
            return
        if self.frame_count:
            raise WdiffError(f"{self.path}: an image holds one frame; name a video instead")
        if self.path.suffix.lower() == ".png":
            write_png(self._temporary, frame)
        elif not cv2.imwrite(str(self._temporary), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise WdiffError(f"{self.path}: could not write the image; check disk space")

    def _encode(self, frame: np.ndarray) -> None:
        rgb = "rgb24" if frame.dtype == np.uint8 else "rgb48le"
        # swscale's automatic threading converts to YUV in slices whose rounding at the
        # seams varies from run to run under load; one thread gives the same bytes.
        video_frame = av.VideoFrame.from_ndarray(frame, format=rgb).reformat(
            format=self.encoding.pix_fmt,
            dst_colorspace=self.colour.sws_matrix,
            dst_color_range=self.colour.sws_range,
            threads=1,
        )
        video_frame.pts = self._pts(self.frame_count)
        if self._times is not None:
            video_frame.time_base = self._times.time_base
        if self._streams is not None:
            self._streams.copy_until(self._seconds(self.frame_count))
        self._mux(self._stream.encode(video_frame))

    def _pts(self, index: int) -> int:
        """Output frame ``index``'s time in the stream's time base: the source frame's."""
        times = self._times
        if times is None:
            return index
        source = self._start + index
        if source >= len(times.pts):  # more frames than the source: at its last spacing
            step = times.end - times.pts[-1]
            return times.end + (source - len(times.pts)) * step - times.pts[self._start]
        return times.pts[source] - times.pts[self._start]

    def _seconds(self, index: int) -> float:
        """When output frame ``index`` starts (``frame_count``: when the video ends)."""
        times = self._times
        if times is None:
            return float(index / self.fps)
        if self._start + index == len(times.pts):
            return float((times.end - times.pts[self._start]) * times.time_base)
        return float(self._pts(index) * times.time_base)

    def _open_container(self, width: int, height: int) -> None:
        container_format = CONTAINERS[self.path.suffix.lower()]
        source = self._source
        if self.colour is None:  # tagged as an untagged stream of this size is read
            self.colour = default_colour((width, height))
        self.encoding = self._choose_encoding((width, height))
        options = {"movflags": "use_metadata_tags"} if container_format in ("mp4", "mov") else {}
        if container_format == "matroska":  # else random SegmentUID/TrackUID every run
            options["fflags"] = "+bitexact"
        self._container = av.open(
            ffmpeg_name(self._temporary), "w", format=container_format, options=options
        )
        self._times = frame_times(source) if source is not None else None
        self._stream = self._add_video_stream(width, height)
        if source is not None:
            offset = source.video_start + float(self._seconds_of_source(self._start))
            self._streams = StreamCopier(
                source, self._container, container_format, offset, self._warning
            )

    def _choose_encoding(self, size: tuple[int, int]) -> Encoding:
        source, pixels = self._source, self._pixels_of
        return choose_encoding(
            CONTAINERS[self.path.suffix.lower()],
            size,
            source_pix_fmt=pixels.pix_fmt if pixels else None,
            source_codec=source.codec if source else None,
            codec=self._codec,
            pix_fmt=self._pix_fmt,
        )

    def bit_depth(self, size: tuple[int, int]) -> int:
        """Bits per sample this output keeps of frames of ``size`` (width, height): its video
        encoding's (as the first frame chooses it), 8 for PNG folders and images. Frames for
        an output of more than 8 bits are best given as uint16."""
        if self._is_folder or self._is_image:
            return 8
        return (self.encoding or self._choose_encoding(size)).bit_depth

    def _seconds_of_source(self, index: int) -> Fraction:
        if self._times is None:
            return index / self.fps
        return self._times.seconds(min(index, len(self._times.pts) - 1))

    def _add_video_stream(self, width: int, height: int):
        encoding = self.encoding
        stream = self._container.add_stream(encoding.codec, rate=self.fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = encoding.pix_fmt
        stream.time_base = self._times.time_base if self._times else 1 / self.fps
        context = stream.codec_context
        context.time_base = stream.time_base  # frames' own times, not rounded to 1/fps
        context.colorspace = self.colour.matrix
        context.color_primaries = self.colour.primaries
        context.color_trc = self.colour.transfer
        context.color_range = self.colour.range_code
        if encoding.codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": "medium"} | x264_cpu_options()
        elif encoding.codec == "libx265":
            stream.options = {"crf": str(self.crf), "preset": "medium"} | x265_options()
        else:  # FFV1, lossless: version 3 with slice checksums, one thread
            stream.options = {"level": "3", "slicecrc": "1", "threads": "1"}
        return stream

    def _warning(self, message: str) -> None:
        message = f"{self.path}: {message}"
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)

    def _finish(self) -> None:
        if self.frame_count == 0:
            raise WdiffError(f"{self.path}: no frames to write")
        if self._stream is not None:
            self._mux(self._stream.encode(None))
            if self._streams is not None:
                self._streams.copy_until(self._seconds(self.frame_count), final=True)
        self._close_container()

    def _close_container(self) -> None:
        if self._streams is not None:
            self._streams.close()
            self._streams = None
        if self._container is not None:
            self._container.close()
            self._container = None
