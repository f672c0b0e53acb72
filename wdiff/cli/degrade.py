"""``wdiff degrade``: a low-resolution copy of a video, as a test input; its path on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wdiff.cli.app import GlobalOptions, command
from wdiff.cli.options import FpsOption, InputArgument, OverwriteOption
from wdiff.cli.printing import note, outputs, warn


@command(
    help=(
        "Make a low-resolution copy (area average; sizes cropped to multiples of the scale), "
        "fps and audio kept: a test input whose ground truth you have.\n\n"
        "Example:\n\n  wdiff degrade clip.mp4 --scale 8 -o low.mp4"
    ),
    takes=("debug", "quiet"),
    needs_device=False,
)
def degrade(
    options: GlobalOptions,
    input: InputArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output video.")],
    scale: Annotated[int, typer.Option("--scale", help="Downscale factor.", min=1)] = 8,
    fps: FpsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    from wdiff.degrade import degrade_video

    done = degrade_video(
        input, output, scale, fps=fps, overwrite=overwrite, warn=None if options.quiet else warn
    )
    if not options.quiet:
        width, height = done.size
        crop = ""
        if done.cropped_to != done.cropped_from:
            crop = "; the input cropped from {}x{} to {}x{} first".format(
                *done.cropped_from, *done.cropped_to
            )
        note(f"wrote {output} ({width}x{height}{crop})")
    outputs([output])
