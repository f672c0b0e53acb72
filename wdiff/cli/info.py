"""``wdiff info``: what wdiff sees in a video or frame folder, on stdout. It never imports
torch (``needs_device=False``), so it starts in a fraction of a second."""

from __future__ import annotations

from typing import Annotated

import typer

from wdiff.cli.app import command
from wdiff.cli.options import FpsOption, InputArgument
from wdiff.cli.printing import document


@command(
    help=(
        "Show what wdiff sees in a video or frame folder: size, frame rate, frames, audio.\n\n"
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
    }
    if as_json:
        document(fields)
    else:
        for key, value in fields.items():
            typer.echo(f"{key:>12}: {value}")
