"""Test media made in code: synthetic clips written with PyAV directly (not with wdiff's writer),
real photographs from scikit-image, and frame folders."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A smooth colour pattern, uint8 (H, W, 3), shifted right by ``index`` pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x = x - index
    red = 127 + 100 * np.sin(x / 7.0)
    green = 127 + 100 * np.cos(y / 5.0 + x / 11.0)
    blue = 127 + 100 * np.sin((x + y) / 9.0)
    return np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)


def make_clip(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: Fraction = Fraction(24),
    audio: bool = True,
    audio_codec: str = "aac",
    sample_rate: int = 48000,
    video: bool = True,
    speed: int = 1,
) -> Path:
    """Write a clip: ``frames`` frames of ``pattern`` (panning ``speed`` pixels a frame) and, if
    ``audio``, a sine tone as long."""
    width, height = size
    container = av.open(str(path), "w")
    if video:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / Fraction(fps)
    if audio:
        audio_stream = container.add_stream(audio_codec, rate=sample_rate)
        audio_stream.layout = "stereo"
        duration = frames / Fraction(fps) if video else Fraction(1)
        total = int(round(duration * sample_rate))
        t = np.arange(total) / sample_rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        fmt = audio_stream.codec_context.codec.audio_formats[0].name
        block = 1024
        for start in range(0, total, block):
            chunk = np.stack([tone[start : start + block]] * 2)
            frame = av.AudioFrame.from_ndarray(_as_format(chunk, fmt), format=fmt, layout="stereo")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in audio_stream.encode(frame):
                container.mux(packet)
        for packet in audio_stream.encode(None):
            container.mux(packet)
    if video:
        for index in range(frames):
            image = pattern(index * speed, width, height)
            frame = av.VideoFrame.from_ndarray(
                np.pad(image, ((0, height % 2), (0, width % 2), (0, 0))),
                format="rgb24",
            )
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    return path


def _as_format(planar: np.ndarray, fmt: str) -> np.ndarray:
    """(channels, samples) float -> the array layout PyAV expects for ``fmt``."""
    if fmt == "fltp":
        return planar.astype(np.float32)
    if fmt == "s16":
        return (planar.T.reshape(1, -1) * 32767).astype(np.int16)
    if fmt == "s16p":
        return (planar * 32767).astype(np.int16)
    if fmt == "flt":
        return planar.T.reshape(1, -1).astype(np.float32)
    raise ValueError(fmt)


def make_frame_folder(folder: Path, frames: int = 6, size: tuple[int, int] = (64, 48)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(frames):
        Image.fromarray(pattern(index, *size)).save(folder / f"frame_{index + 1}.png")
    return folder


def audio_seconds(path: Path) -> float:
    """Length of the decoded audio of ``path`` in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))
