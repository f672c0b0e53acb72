"""``wdiff info``: what wdiff sees in a video or frame folder, on stdout: sizes, the exact frame
rate, frames, the codec, pixel format (bit depth, chroma subsampling) and colour (matrix,
primaries, transfer, range: ffprobe's names; an untagged stream's as players guess them) an
output keeps. It never imports torch (``needs_device=False``), so it starts in a fraction of a
second."""

from __future__ import annotations

from typing import Annotated

import typer

from wdiff.cli.app import command
from wdiff.cli.options import FpsOption, InputArgument
from wdiff.cli.printing import document


@command(
    help=(
        "Show what wdiff sees in a video or frame folder: size, frame rate, frames, codec, "
        "pixel format and bit depth, colour (matrix, primaries, transfer, range), audio.\n\n"
        "Example:\n\n  wdiff info in.mp4 --json"
    ),
    needs_device=False,
)
def info(
    input: InputArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fps: FpsOption = None,
) -> None:
    from wdiff.video import fps_text, open_video

    meta = open_video(input, fps=fps).info
    fields = {
        "path": str(meta.path),
        "width": meta.width,
        "height": meta.height,
        "fps": fps_text(meta.fps),
        "frames": meta.frame_count,
        "duration_s": round(meta.duration, 6),
        "rotation": meta.rotation,
        "audio": meta.has_audio,
        "frame_folder": meta.is_folder,
        **_pixels(meta),
    }
    if as_json:
        document(fields)
    else:
        for key, value in fields.items():
            typer.echo(f"{key:>12}: {_text(value)}")


def _pixels(meta) -> dict:
    """codec, pix_fmt, bit_depth, chroma and colour (None for RGB frames) of ``meta``."""
    from wdiff.video.encoding import pixel_layout

    pix_fmt = meta.pix_fmt or ("rgb24" if meta.is_folder else None)  # frames are read as RGB
    bits, chroma = pixel_layout(pix_fmt) if pix_fmt else (None, None)
    colour = None
    if meta.colour is not None:
        names = meta.colour.names()
        colour = {
            "matrix": names["color_space"],
            "primaries": names["color_primaries"],
            "transfer": names["color_transfer"],
            "range": names["color_range"],
        }
    return {
        "codec": meta.codec,
        "pix_fmt": pix_fmt,
        "bit_depth": bits,
        "chroma": f"{chroma[0]}:{chroma[1]}:{chroma[2]}" if chroma else None,
        "colour": colour,
    }


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items())
    return str(value)
