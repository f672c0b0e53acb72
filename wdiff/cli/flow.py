"""``wdiff flow``: a video's optical flows into a safetensors file; its path (and the
``--viz`` video's) on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wdiff.cli.app import GlobalOptions, Renamed, command
from wdiff.cli.options import (
    CacheDirOption,
    FlowMethodOption,
    FpsOption,
    InputArgument,
    NoCacheOption,
    OverwriteOption,
    RaftModelOption,
    RaftWeightsOption,
)
from wdiff.cli.printing import feedback, note, outputs


@command(
    help=(
        "Estimate forward/backward optical flow and validity masks between consecutive frames.\n\n"
        "Writes a safetensors file with forward, backward (float (N-1, 2, H, W), pixels, "
        "(dx, dy)) and valid_forward, valid_backward (bool (N-1, 1, H, W)). Flows are cached "
        "by the video's content and the estimator's settings.\n\n"
        "Examples:\n\n"
        "  wdiff flow in.mp4 -o flows.safetensors --viz flow.mp4\n\n"
        "  wdiff flow frames/ --fps 30 --flow raft --raft-weights raft_large.pth"
    ),
    renamed=(Renamed("--method", "--flow", "dis, farneback or raft"),),
)
def flow(
    options: GlobalOptions,
    input: InputArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Flows file.", show_default="INPUT.flows.safetensors"),
    ] = None,
    flow_method: FlowMethodOption = "dis",
    dis_preset: Annotated[
        str, typer.Option("--dis-preset", help="DIS quality: fast, medium or fine.")
    ] = "fine",
    raft_model: RaftModelOption = "large",
    raft_weights: RaftWeightsOption = None,
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask",
            help="Inpainting mask (video, image or folder; white = hole): "
            "flow inside it is completed from its surroundings.",
        ),
    ] = None,
    viz: Annotated[
        Path | None, typer.Option("--viz", help="Also write frames beside flow colours here.")
    ] = None,
    fps: FpsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    from wdiff.flow import FlowOptions
    from wdiff.flow.flow_file import write_video_flows

    flow = FlowOptions(
        flow_method,
        dis_preset=dis_preset,
        raft_model=raft_model,
        raft_weights=raft_weights,
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )
    written = write_video_flows(
        input,
        output,
        mask=mask,
        viz=viz,
        fps=fps,
        flow=flow,
        overwrite=overwrite,
        device=options.torch_device(),
        feedback=feedback(options.quiet),
    )
    if not options.quiet:
        for path in written.discarded:
            note(f"discarded a damaged cache entry {path}; recomputed")
        if written.cached:
            note(f"{written.output}: flows from the cache")
    outputs([written.output] + ([written.viz] if written.viz is not None else []))
