"""Streaming video input/output over PyAV, frame folders, and inpainting masks.

Frames on disk and in this module are uint8 RGB arrays ``(H, W, 3)`` (a chunk: ``(N, H, W, 3)``);
:func:`frames_to_tensor` and :func:`tensor_to_frames` convert to and from the pipeline's float
``(N, 3, H, W)`` tensors in ``[-1, 1]``. Nothing here holds a whole video in memory: readers
decode on demand, writers encode frame by frame and copy the input's audio alongside.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from wdiff.errors import WdiffError
from wdiff.outputs import atomic_output

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_FOLDER_FPS = Fraction(24)
SAMPLE_CLIPS = {"builtin:bunny": "bunny.mp4"}

# Audio codecs each container can carry as they are; anything else is re-encoded to AAC.
_AUDIO_COPYABLE = {
    "mp4": {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": None,  # anything
}
# Set on files we write with odd frame sizes: they are encoded padded to even and cropped back.
_SIZE_TAG = "wdiff_frame_size"


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

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height


def resolve_input(spec: str | Path) -> Path:
    """Map a path or a bundled sample name (``builtin:bunny``) to a path on disk."""
    text = str(spec)
    if text in SAMPLE_CLIPS:
        return Path(str(resources.files("wdiff.data").joinpath(SAMPLE_CLIPS[text])))
    if text.startswith("builtin:"):
        known = ", ".join(SAMPLE_CLIPS)
        raise WdiffError(f"{text}: no such bundled clip; the bundled clips are: {known}")
    return Path(text)


def open_video(spec: str | Path, fps: Fraction | float | None = None) -> VideoReader:
    """Open a video file (mp4, mkv, mov, ...) or a folder of PNG/JPG frames for streaming.

    ``fps`` applies to frame folders (default 24); a video file keeps its own rate.
    Raises WdiffError naming the file and the fix when it cannot be read.
    """
    path = resolve_input(spec)
    if not path.exists():
        raise WdiffError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        return FrameFolderReader(path, Fraction(fps) if fps else DEFAULT_FOLDER_FPS)
    return FileVideoReader(path)


class VideoReader:
    """A video that can be read frame by frame, any number of times."""

    info: VideoInfo

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Yield uint8 RGB frames ``(H, W, 3)`` from ``start``, at most ``count`` of them."""
        raise NotImplementedError

    def chunks(self, size: int, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``(n, H, W, 3)`` uint8 chunks of at most ``size`` frames."""
        batch: list[np.ndarray] = []
        for frame in self.frames(start, count):
            batch.append(frame)
            if len(batch) == size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)


class FileVideoReader(VideoReader):
    """A video file decoded with PyAV: exact frame rate, rotation honoured, audio detected."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.info, self._crop = _probe_file(self.path)

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
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
                        yield self._to_array(frame)
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

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        array = frame.to_ndarray(format="rgb24", threads=1)  # see VideoWriter._write_one
        if self._crop is not None:
            array = array[: self._crop[1], : self._crop[0]]
        if self.info.rotation:
            array = np.ascontiguousarray(np.rot90(array, k=self.info.rotation // 90))
        return array


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().rstrip(".")


@contextlib.contextmanager
def _open_container(path: Path) -> Iterator[av.container.InputContainer]:
    try:
        container = av.open(str(path), metadata_errors="ignore")
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
    )
    return info, crop


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


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """PNG/JPG files in ``folder`` in natural order (frame2 before frame10)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=_natural_key)


class FrameFolderReader(VideoReader):
    """A folder of 8-bit RGB PNG/JPG frames, all the same size, read in natural order."""

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
        )

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        stop = len(self.files) if count is None else min(len(self.files), start + count)
        for file in self.files[start:stop]:
            yield read_rgb_image(file)


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
            f"{file}: 16-bit or float frame ({mode}); wdiff reads 8-bit RGB frames: convert "
            "them to 8-bit (e.g. `mogrify -depth 8 *.png`)"
        )
    if mode in ("RGBA", "PA", "La", "RGBa"):
        raise WdiffError(
            f"{file}: frame has an alpha channel; wdiff reads RGB frames: flatten the alpha "
            "(e.g. `mogrify -alpha off *.png`)"
        )


def read_rgb_image(file: Path) -> np.ndarray:
    """Decode one 8-bit RGB image to ``(H, W, 3)`` uint8; other formats are errors."""
    data = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise WdiffError(f"{file}: not a readable image; replace the frame")
    if data.dtype != np.uint8:
        _check_image_mode(file, "I;16")
    if data.ndim == 2 or data.shape[2] == 1:
        _check_image_mode(file, "L")
    if data.shape[2] == 4:
        _check_image_mode(file, "RGBA")
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def write_png(path: Path, frame: np.ndarray) -> None:
    """Write a uint8 RGB frame ``(H, W, 3)`` as PNG (fast compression). A full disk raises
    OSError (ENOSPC), which ``atomic_output`` turns into one line; OpenCV's writer would print
    libpng's own message on stderr and only return False."""
    Image.fromarray(frame, mode="RGB").save(path, format="PNG", compress_level=1)


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
        stream.options = {"crf": str(self.crf), "preset": "medium"}
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


def frames_to_tensor(frames: np.ndarray):
    """uint8 ``(N, H, W, 3)`` or ``(H, W, 3)`` -> float32 torch ``(N, 3, H, W)`` in [-1, 1]."""
    import torch

    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)
    return tensor.float().div(127.5).sub(1.0)


def tensor_to_frames(tensor) -> np.ndarray:
    """float ``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)``, rounded and clipped."""
    import torch

    scaled = (tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(dtype=torch.uint8).permute(0, 2, 3, 1).numpy()


class MaskReader:
    """Inpainting masks for every frame: white (> half range) = the region to fill.

    The source may be a video, one image used for every frame, or a folder of images. Sizes
    and frame counts must match the video's exactly.
    """

    def __init__(self, spec: str | Path, video: VideoInfo):
        self.path = resolve_input(spec)
        self.video = video
        if not self.path.exists():
            raise WdiffError(f"{self.path}: no such mask file or folder; check the --mask path")
        if self.path.is_dir():
            self._files = list_images(self.path)
            if not self._files:
                raise WdiffError(f"{self.path}: the mask folder holds no PNG or JPG images")
            self._check_count(len(self._files))
            for file in self._files:
                with _reading_image(file), Image.open(file) as image:
                    self._check_size(file, image.size)
            self._kind = "folder"
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._single = _read_mask_image(self.path)
            self._check_size(self.path, (self._single.shape[1], self._single.shape[0]))
            self._kind = "image"
        else:
            self._video = FileVideoReader(self.path)
            self._check_count(self._video.info.frame_count)
            self._check_size(self.path, self._video.info.size)
            self._kind = "video"

    def _check_size(self, file: Path, size: tuple[int, int]) -> None:
        if tuple(size) != self.video.size:
            raise WdiffError(
                f"{file}: mask is {size[0]}x{size[1]} but the video {self.video.path.name} is "
                f"{self.video.width}x{self.video.height}; give a mask of the video's size"
            )

    def _check_count(self, count: int) -> None:
        if count != self.video.frame_count:
            raise WdiffError(
                f"{self.path}: mask has {count} frames but the video {self.video.path.name} has "
                f"{self.video.frame_count}; give one mask frame per video frame, or one image"
            )

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Yield bool masks ``(H, W)``, True where the content is to be filled."""
        stop = (
            self.video.frame_count if count is None else min(self.video.frame_count, start + count)
        )
        if self._kind == "image":
            for _ in range(start, stop):
                yield self._single
        elif self._kind == "folder":
            for file in self._files[start:stop]:
                yield _read_mask_image(file)
        else:
            for frame in self._video.frames(start, stop - start):
                yield frame.astype(np.uint16).sum(axis=2) > 3 * 127


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


def _read_mask_image(file: Path) -> np.ndarray:
    data = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if data is None:
        raise WdiffError(f"{file}: not a readable mask image; give a PNG or JPG")
    half = np.iinfo(data.dtype).max / 2 if data.dtype.kind in "ui" else 0.5
    return data > half
