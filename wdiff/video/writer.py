"""Writing frames: H.264 in mp4/mkv/mov with the source's audio, PNG folders, single images."""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from wdiff.errors import WdiffError
from wdiff.outputs import atomic_output
from wdiff.video.container import _SIZE_TAG
from wdiff.video.images import write_png
from wdiff.video.info import CONTAINERS, IMAGE_SUFFIXES, VideoInfo
from wdiff.video.x264 import x264_cpu_options

# Audio codecs each container can carry as they are; anything else is re-encoded to AAC.
_AUDIO_COPYABLE = {
    "mp4": {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": None,  # anything
}


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
    """Encode frames to H.264 (libx264, yuv420p) in mp4/mkv/mov, to a folder of PNGs, or one
    frame to a PNG/JPG image.

    Writes go to a temporary file beside ``path`` that :meth:`close` renames onto it; on an
    exception inside ``with VideoWriter(...)`` the temporary is removed. The audio of
    ``audio_from`` (from frame ``audio_start_frame`` on, cut at the video's end) is copied,
    re-encoded to AAC only where the container cannot carry its codec. Odd frame sizes are
    encoded padded to even by repeating the last row/column and tagged, so wdiff reads them
    back at their true size.
    """

    def __init__(
        self,
        path: Path,
        fps: Fraction,
        *,
        crf: int = 18,
        audio_from: VideoInfo | None = None,
        audio_start_frame: int = 0,
    ):
        self.path = Path(path)
        self.fps = Fraction(fps)
        self.crf = crf
        self.frame_count = 0
        self._is_folder = self.path.suffix == ""
        self._is_image = self.path.suffix.lower() in IMAGE_SUFFIXES
        check_video_output(self.path)
        if not 0 <= crf <= 51:
            raise WdiffError(f"--crf must be between 0 and 51, got {crf}")
        self._audio_from = audio_from if audio_from and audio_from.has_audio else None
        self._audio_start = float(audio_start_frame / self.fps)
        self._atomic = atomic_output(self.path)
        self._temporary: Path | None = None
        self._container = None
        self._stream = None
        self._audio: _AudioCopier | None = None
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
        """Append a uint8 RGB frame ``(H, W, 3)`` or chunk ``(N, H, W, 3)``."""
        if self._temporary is None:
            raise RuntimeError("use VideoWriter as a context manager")
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 (N, H, W, 3) frames, got {frames.dtype} {frames.shape}"
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
        if self._is_image:
            if self.frame_count:
                raise WdiffError(f"{self.path}: an image holds one frame; name a video instead")
            if self.path.suffix.lower() == ".png":
                write_png(self._temporary, frame)
            elif not cv2.imwrite(str(self._temporary), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise WdiffError(f"{self.path}: could not write the image; check disk space")
        elif self._is_folder:
            write_png(self._temporary / f"frame_{self.frame_count:06d}.png", frame)
        else:
            padded = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            # swscale's automatic threading converts to YUV in slices whose rounding at the
            # seams varies from run to run under load; one thread gives the same bytes.
            video_frame = av.VideoFrame.from_ndarray(padded, format="rgb24").reformat(
                format="yuv420p", threads=1
            )
            video_frame.pts = self.frame_count
            if self._audio is not None:
                self._audio.copy_until(float(self.frame_count / self.fps))
            self._mux(self._stream.encode(video_frame))
        self.frame_count += 1

    def _open_container(self, width: int, height: int) -> None:
        container_format = CONTAINERS[self.path.suffix.lower()]
        options = {"movflags": "use_metadata_tags"} if container_format in ("mp4", "mov") else {}
        if container_format == "matroska":  # else random SegmentUID/TrackUID every run
            options["fflags"] = "+bitexact"
        self._container = av.open(
            str(self._temporary), "w", format=container_format, options=options
        )
        if width % 2 or height % 2:
            self._container.metadata[_SIZE_TAG] = f"{width}x{height}"
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.fps
        stream.options = {"crf": str(self.crf), "preset": "medium"} | x264_cpu_options()
        self._stream = stream
        if self._audio_from is not None:
            self._audio = _AudioCopier(
                self._audio_from, self._container, container_format, self._audio_start
            )

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)

    def _finish(self) -> None:
        if self.frame_count == 0:
            raise WdiffError(f"{self.path}: no frames to write")
        if self._stream is not None:
            self._mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.copy_until(float(self.frame_count / self.fps), final=True)
        self._close_container()

    def _close_container(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            self._container.close()
            self._container = None


class _AudioCopier:
    """Moves the source's audio into an output container, interleaved with the video."""

    def __init__(self, source: VideoInfo, output, container_format: str, start: float):
        self._input = av.open(str(source.path), metadata_errors="ignore")
        in_stream = self._input.streams.audio[0]
        self._in_stream = in_stream
        self._offset = source.video_start + start  # source seconds that map to output time 0
        copyable = _AUDIO_COPYABLE[container_format]
        self._transcode = copyable is not None and in_stream.codec_context.name not in copyable
        if self._transcode:
            context = in_stream.codec_context
            self._out_stream = output.add_stream("aac", rate=context.sample_rate)
            self._out_stream.layout = context.layout.name if context.channels <= 2 else "stereo"
            self._resampler = av.AudioResampler(
                format="fltp", layout=self._out_stream.layout, rate=context.sample_rate
            )
        else:
            self._out_stream = output.add_stream_from_template(in_stream)
        self._output = output
        self._packets = self._input.demux(in_stream)
        self._pending = None
        self._done = False

    def copy_until(self, seconds: float, final: bool = False) -> None:
        """Mux source audio whose start lies before output time ``seconds``."""
        while not self._done:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None or packet.pts is None and packet.size == 0:
                self._done = True
                break
            if packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base) - self._offset
            if start >= seconds:
                self._pending = packet
                if final:
                    self._done = True
                break
            duration = float((packet.duration or 0) * packet.time_base)
            if self._offset > 0 and start + duration <= 0:
                continue  # before the excerpt; from the start, priming packets (pts < 0) stay
            self._emit(packet, start)
        if final and self._transcode:
            for out_packet in self._out_stream.encode(None):
                self._output.mux(out_packet)

    def _emit(self, packet, start: float) -> None:
        if self._transcode:
            for frame in packet.decode():
                frame.pts = None
                for resampled in self._resampler.resample(frame):
                    for out_packet in self._out_stream.encode(resampled):
                        self._output.mux(out_packet)
            return
        shift = int(round(self._offset / packet.time_base))
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._out_stream
        self._output.mux(packet)

    def close(self) -> None:
        self._input.close()
