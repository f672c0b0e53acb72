"""``wdiff eval``: temporal consistency and fidelity of videos (``wdiff.scoring``), the summary
table it prints on stderr, and the paths of the files it wrote (``-o``, ``--csv``, ``--plot``)
on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wdiff.cli.app import GlobalOptions, command
from wdiff.cli.options import (
    CacheDirOption,
    FlowMethodOption,
    FpsOption,
    NoCacheOption,
    OverwriteOption,
    RaftModelOption,
    RaftWeightsOption,
)
from wdiff.cli.printing import feedback, outputs


@command(
    "eval",
    help=(
        "Measure temporal consistency (warping error to the previous and the first frame, "
        "flicker, tOF) and, given a reference, fidelity (PSNR, SSIM, MSE) of videos.\n\n"
        "All outputs are scored on one set of flows: --flows, else flows estimated on "
        "--flow-from (e.g. the low-res input, rescaled), else on --reference, else on the first "
        "output. Prints a summary on stderr; -o, --csv and --plot write files (their paths go to "
        "stdout).\n\n"
        "Examples:\n\n"
        "  wdiff eval out.mp4 --reference gt.mp4 --flow-from in.mp4 -o eval.json\n\n"
        "  wdiff eval guided.mp4 unguided.mp4 --flow-from low.mp4 --plot eval.png --csv eval.csv"
    ),
)
def evaluate(
    options: GlobalOptions,
    videos: Annotated[list[str], typer.Argument(help="Videos (files or frame folders) to score.")],
    reference: Annotated[
        str | None, typer.Option("--reference", help="Ground-truth video for PSNR/SSIM/MSE/tOF.")
    ] = None,
    flow_from: Annotated[
        str | None, typer.Option("--flow-from", help="Estimate the flows on this video.")
    ] = None,
    flows_file: Annotated[
        Path | None, typer.Option("--flows", help="Flows file from `wdiff flow`.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON report.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Per-frame table.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG of errors over frames.")] = None,
    lpips_weights: Annotated[
        Path | None,
        typer.Option("--lpips-weights", help="torchvision AlexNet weights (.pth) for LPIPS."),
    ] = None,
    fid_weights: Annotated[
        Path | None,
        typer.Option("--fid-weights", help="torchvision Inception-v3 weights (.pth) for FID."),
    ] = None,
    clip_model: Annotated[
        Path | None,
        typer.Option("--clip-model", help="Local CLIP model folder for the CLIP score."),
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Text the CLIP score compares frames with.")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="SDXL folder: also measure warping errors in its latents."),
    ] = None,
    flow_method: FlowMethodOption = "dis",
    fps: FpsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    raft_model: RaftModelOption = "large",
    raft_weights: RaftWeightsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    from wdiff.flow import FlowOptions
    from wdiff.scoring import MetricWeights, score_videos

    flow = FlowOptions(
        flow_method,
        raft_model=raft_model,
        raft_weights=raft_weights,
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )
    result = score_videos(
        videos,
        reference=reference,
        flow_from=flow_from,
        flows_file=flows_file,
        output=output,
        csv_path=csv_path,
        plot=plot,
        weights=MetricWeights(
            lpips=lpips_weights, fid=fid_weights, clip=clip_model, prompt=prompt, latent_model=model
        ),
        flow=flow,
        fps=fps,
        overwrite=overwrite,
        device=options.torch_device(),
        feedback=feedback(options.quiet),
        on_scores=None if options.quiet else print_summary,
    )
    outputs(result.written)


SHORT_LABELS = {
    "warp_prev": "warping error, prev.",
    "warp_first": "warping error, first",
    "flicker": "flicker",
    "tof": "tOF (px)",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "mse": "MSE",
    "lpips": "LPIPS",
    "clip_score": "CLIP score",
    "fid": "FID",
    "latent_warp_prev": "latent warp., prev.",
    "latent_warp_first": "latent warp., first",
}
TABLE_WIDTH = 100
VIDEOS_PER_TABLE = 3  # columns of "mean ± std" that fit TABLE_WIDTH beside the labels


def print_summary(scores: list, document: dict) -> None:
    """Each video's metrics (mean ± std over frames) on stderr, a column per video and at most
    ``VIDEOS_PER_TABLE`` videos per table, so it fits 100 columns; then the metrics skipped.
    The per-frame values are in the files (-o, --csv)."""
    from rich.console import Console
    from rich.table import Table

    from wdiff.evaluate import PER_FRAME

    summaries = [s.summary() for s in scores]
    keys = [k for k in (*PER_FRAME, "fid") if any(k in summary for summary in summaries)]
    console = Console(width=TABLE_WIDTH, stderr=True)
    for first in range(0, len(scores), VIDEOS_PER_TABLE):
        chunk = range(first, min(first + VIDEOS_PER_TABLE, len(scores)))
        title = f"flows: {document['flow_source']}" if first == 0 else None
        table = Table(title=title, title_justify="left")
        table.add_column("mean ± std")
        for index in chunk:
            table.add_column(scores[index].name, justify="right", overflow="fold")
        for key in keys:
            cells = [_cell(summaries[index].get(key)) for index in chunk]
            table.add_row(SHORT_LABELS[key], *cells)
        console.print(table)
    for key, reason in document["skipped"].items():
        console.print(f"skipped {key}: {reason}", style="dim", highlight=False)


def _cell(value: dict | None) -> str:
    return "-" if value is None else f"{value['mean']:.4g} ± {value['std']:.2g}"
