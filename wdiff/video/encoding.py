"""Which encoder and pixel format a video output gets: the input's bit depth and chroma
subsampling kept where the encoder allows (``--codec``, ``--pix-fmt`` to choose), odd sizes
in a chroma format that can hold them.

H.264 and HEVC crop frames to odd sizes in their headers only at 4:4:4 (a 4:2:0 crop moves in
steps of 2), so an odd-sized output is 4:4:4 there; FFV1 stores any size in any format.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

from wdiff.errors import WdiffError

CODECS = ("libx264", "libx265", "ffv1")
# the encoder that keeps an input's codec, by decoder name
_SAME_CODEC = {"h264": "libx264", "hevc": "libx265", "ffv1": "ffv1"}
# containers each encoder can be written to (FFmpeg's muxer names)
_CONTAINERS = {
    "libx264": ("mp4", "mov", "matroska"),
    "libx265": ("mp4", "mov", "matroska"),
    "ffv1": ("mp4", "matroska"),
}
_SUFFIX = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv"}


@dataclass(frozen=True)
class Encoding:
    """An output's encoder, pixel format and quality (``crf``; FFV1 is lossless)."""

    codec: str
    pix_fmt: str

    @property
    def bit_depth(self) -> int:
        return av.VideoFormat(self.pix_fmt).components[0].bits


def pixel_layout(pix_fmt: str | None) -> tuple[int, str]:
    """(bits per sample, chroma ``"420"``/``"422"``/``"444"``) of a decoded pixel format;
    8-bit 4:2:0 when unknown. RGB formats count as 4:4:4."""
    if not pix_fmt:
        return 8, "420"
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return 8, "420"
    bits = max(component.bits for component in fmt.components)
    if fmt.is_rgb or len(fmt.components) < 3:
        return bits, "444" if fmt.is_rgb else "420"
    wide, tall = fmt.chroma_width(64) == 64, fmt.chroma_height(64) == 64
    return bits, "444" if wide and tall else "422" if tall else "420"


def choose_encoding(
    container: str,
    size: tuple[int, int],
    *,
    source_pix_fmt: str | None = None,
    source_codec: str | None = None,
    codec: str | None = None,
    pix_fmt: str | None = None,
) -> Encoding:
    """The encoder and pixel format for an output in ``container`` (FFmpeg's muxer name) of
    ``size`` (width, height). Unset ``codec``: the input's own when it is H.264, HEVC or FFV1
    and the container holds it, else libx264. Unset ``pix_fmt``: the input's depth (8 or 10
    bits; FFV1 up to 16) and chroma, 4:4:4 for odd sizes. Raises WdiffError for a choice the
    encoder or container refuses."""
    chosen = codec or _SAME_CODEC.get(source_codec or "", "libx264")
    if codec is None and container not in _CONTAINERS[chosen]:
        chosen = "libx264"
    if chosen not in CODECS:
        raise WdiffError(f"--codec {chosen}: not one of {', '.join(CODECS)}")
    if container not in _CONTAINERS[chosen]:
        holders = " or ".join(_SUFFIX[name] for name in _CONTAINERS[chosen])
        raise WdiffError(
            f"--codec {chosen} cannot be written to {_SUFFIX[container]}; use {holders}"
        )
    odd = size[0] % 2 or size[1] % 2
    if pix_fmt is None:
        pix_fmt = _default_pix_fmt(chosen, source_pix_fmt, odd)
        if pix_fmt not in _formats(chosen) and codec is None:
            chosen = "libx265"  # an x264 build without high bit depth
    _check_pix_fmt(chosen, pix_fmt, size)
    return Encoding(chosen, pix_fmt)


def check_choice(container: str, codec: str | None, pix_fmt: str | None) -> None:
    """Refuse, before any work, a ``codec`` or ``pix_fmt`` that no frame size allows (odd
    sizes are checked once the size is known; without ``codec``, any encoder may take
    ``pix_fmt``)."""
    if codec is None and pix_fmt is None:
        return
    errors = []
    for candidate in [codec] if codec else [c for c in CODECS if container in _CONTAINERS[c]]:
        try:
            choose_encoding(container, (2, 2), codec=candidate, pix_fmt=pix_fmt)
            return
        except WdiffError as error:
            errors.append(error)
    raise errors[0]


def _default_pix_fmt(codec: str, source_pix_fmt: str | None, odd: bool) -> str:
    bits, chroma = pixel_layout(source_pix_fmt)
    if odd and codec != "ffv1":
        chroma = "444"
    if bits <= 8:
        return f"yuv{chroma}p"
    if codec == "ffv1" and bits in (12, 16):
        return f"yuv{chroma}p{bits}le"
    return f"yuv{chroma}p10le"


def _formats(codec: str) -> set[str]:
    return {fmt.name for fmt in av.codec.Codec(codec, "w").video_formats or ()}


def _check_pix_fmt(codec: str, pix_fmt: str, size: tuple[int, int]) -> None:
    usable = sorted(
        name for name in _formats(codec) if name.startswith("yuv") and name[3] not in "ja"
    )  # planar YUV; full range is a tag, not a yuvj format
    if pix_fmt not in usable:
        raise WdiffError(
            f"--pix-fmt {pix_fmt}: {codec} does not take it; use one of {', '.join(usable)}"
        )
    _, chroma = pixel_layout(pix_fmt)
    width, height = size
    if codec != "ffv1" and chroma != "444" and (width % 2 or height % 2):
        raise WdiffError(
            f"--pix-fmt {pix_fmt}: {codec} cannot store a {width}x{height} frame with "
            "subsampled chroma; use a 4:4:4 format (yuv444p) or --codec ffv1"
        )
