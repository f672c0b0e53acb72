"""``wdiff warp-noise``: diffusion noise warped along a video's flows, into a safetensors file;
its path (then ``--stats``' and ``--viz``') on stdout."""

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
from wdiff.cli.printing import feedback, outputs

NOISES = "gp, integral, bilinear, bilinear-gp, nearest, fixed or resample"


@command(
    "warp-noise",
    help=(
        "Warp diffusion noise along a video's optical flow and save it.\n\n"
        "Writes a safetensors file with `noise`, float32 (N, C, h, w), on a grid GRID times "
        "coarser than the frames. --noise: gp (the paper's GP noise by Random Fourier "
        "Features), integral (How I Warped Your Noise), bilinear, nearest, fixed, resample.\n\n"
        "Examples:\n\n"
        "  wdiff warp-noise in.mp4 --noise gp -o noise.safetensors --grid 8\n\n"
        "  wdiff warp-noise in.mp4 --noise integral --stats stats.json --viz noise.mp4"
    ),
    renamed=(Renamed("--method", "--noise", NOISES),),
)
def warp_noise(
    options: GlobalOptions,
    input: InputArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Noise file.", show_default="INPUT.noise-NOISE.safetensors"
        ),
    ] = None,
    noise: Annotated[str, typer.Option("--noise", help=f"{NOISES}.")] = "gp",
    channels: Annotated[int, typer.Option("--channels", help="Noise channels.", min=1)] = 4,
    grid: Annotated[
        int, typer.Option("--grid", help="Cells per frame pixel block (8 = a latent grid).", min=1)
    ] = 1,
    gp_extend: Annotated[
        bool,
        typer.Option(
            "--gp-extend",
            help="gp: entering/disoccluded cells continue the field "
            "instead of getting fresh noise.",
        ),
    ] = False,
    flow_method: FlowMethodOption = "dis",
    raft_model: RaftModelOption = "large",
    raft_weights: RaftWeightsOption = None,
    stats: Annotated[
        Path | None, typer.Option("--stats", help="Per-frame statistics as JSON here.")
    ] = None,
    viz: Annotated[
        Path | None, typer.Option("--viz", help="Frames beside their noise (channels 0-2).")
    ] = None,
    fps: FpsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    from wdiff.flow import FlowOptions
    from wdiff.noise.noise_file import write_warped_noise

    flow = FlowOptions(
        flow_method,
        raft_model=raft_model,
        raft_weights=raft_weights,
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )
    written = write_warped_noise(
        input,
        output,
        method=noise,
        channels=channels,
        grid=grid,
        gp_extend=gp_extend,
        seed=options.seed,
        flow=flow,
        stats=stats,
        viz=viz,
        fps=fps,
        overwrite=overwrite,
        device=options.torch_device(),
        feedback=feedback(options.quiet),
    )
    outputs(written)
