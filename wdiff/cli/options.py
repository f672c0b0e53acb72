"""Option declarations shared by several subcommands, and ``RestoreOptions``: the options
``upscale`` and ``inpaint`` share, declared once as an option group (see ``app.command``).

Every float option passes ``finite`` (NaN and infinities refused); ``--fps`` and ``--lr`` also
``positive``. Flags that are run settings (a preset may turn them on) have a ``--no-`` form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from wdiff.errors import WdiffError


def finite(value: float | None) -> float | None:
    """Typer callback of every float option: NaN and infinities are refused (click's FloatRange
    lets them through, and a NaN setting would run and write a report JSON cannot read)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def positive(value: float | None) -> float | None:
    if finite(value) is not None and value <= 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


def _tile_value(value: str | int) -> int | str:
    from wdiff.config import parse_tile

    try:
        return parse_tile(value)
    except WdiffError as error:
        raise typer.BadParameter("use auto, 0 (whole frames) or pixels per tile side") from error


def output_option(named: str) -> typer.models.OptionInfo:
    """``-o`` of a restore: an output video, by default beside the input as ``named``."""
    return typer.Option(
        "--output",
        "-o",
        help="Output video; with several inputs, the folder for their outputs.",
        show_default=f"beside the input: {named}",
    )


InputArgument = Annotated[str, typer.Argument(help="Video file, frame folder, or builtin:bunny.")]
FpsOption = Annotated[
    float | None,
    typer.Option("--fps", help="Frame rate of a frame folder (default 24).", callback=positive),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="Flow cache folder.", show_default="~/.cache/wdiff or $WDIFF_CACHE_DIR"
    ),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Neither read nor write the flow cache.")
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
FlowMethodOption = Annotated[str, typer.Option("--flow", help="dis, farneback or raft.")]
RaftModelOption = Annotated[
    str, typer.Option("--raft-model", help="--flow raft: large or small (torchvision's).")
]
RaftWeightsOption = Annotated[
    Path | None,
    typer.Option("--raft-weights", help="Local RAFT weights (.pth); else torch's hub cache."),
]
SDXL_PANEL = "SDXL memory and precision"


@dataclass
class RestoreOptions:
    """The options of ``upscale`` and ``inpaint`` after their own, in --help order. Those that
    are ``RestoreSettings`` fields (``flow_method`` is ``flow``) override the preset where
    given on the command line."""

    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="builtin (the shipped model for the task), a `wdiff finetune` run folder or "
            "model file, or a local diffusers SDXL folder.",
        ),
    ] = "builtin"
    noise: Annotated[
        str,
        typer.Option(
            "--noise", help="gp, integral, bilinear, bilinear-gp, nearest, fixed or resample."
        ),
    ] = "gp"
    sampler: Annotated[
        str, typer.Option("--sampler", help="warped (ours) or batch-consistent (Kwon & Ye).")
    ] = "warped"
    steps: Annotated[
        int,
        typer.Option(
            "--steps",
            help="Sampling steps. 1: one network call, the model's estimate of the clean "
            "frame (with builtin:sr the highest PSNR, but less steady over time than "
            "sampling; self-guidance does not act).",
            min=1,
        ),
    ] = 25
    guidance: Annotated[
        float,
        typer.Option(
            "--guidance", help="Self-guidance strength lambda (0 = off).", callback=finite
        ),
    ] = 1.0
    guidance_mode: Annotated[
        str,
        typer.Option("--guidance-mode", help="full (through the network) or cheap (no backprop)."),
    ] = "full"
    guidance_fraction: Annotated[
        float,
        typer.Option(
            "--guidance-fraction", help="Share of steps guided, from the first.", callback=finite
        ),
    ] = 1.0
    first_guidance: Annotated[
        float,
        typer.Option(
            "--first-guidance", help="Extra pull toward frame 0 (stops drift).", callback=finite
        ),
    ] = 0.0
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Text prompt (text-conditioned models only).")
    ] = None
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype", help="UNet/text encoders: bf16, fp16 or fp32.", rich_help_panel=SDXL_PANEL
        ),
    ] = "bf16"
    variant: Annotated[
        str,
        typer.Option(
            "--variant",
            help="Weights variant of a diffusers folder (fp16 loads *.fp16.safetensors); auto: "
            "the plain weights, or fp16 where only those are there.",
            rich_help_panel=SDXL_PANEL,
        ),
    ] = "auto"
    vae_tiling: Annotated[
        bool,
        typer.Option(
            "--vae-tiling/--no-vae-tiling",
            help="Decode large frames in tiles.",
            rich_help_panel=SDXL_PANEL,
        ),
    ] = False
    vae_slicing: Annotated[
        bool,
        typer.Option(
            "--vae-slicing/--no-vae-slicing",
            help="VAE one image at a time.",
            rich_help_panel=SDXL_PANEL,
        ),
    ] = False
    cpu_offload: Annotated[
        bool,
        typer.Option(
            "--cpu-offload/--no-cpu-offload",
            help="Keep the VAE and text encoders on the CPU between uses.",
            rich_help_panel=SDXL_PANEL,
        ),
    ] = False
    noise_level: Annotated[
        int,
        typer.Option(
            "--noise-level",
            help="SD x4 upscaler: noise added to the low-res frame, as the pipeline's "
            "noise_level (0 to its max_noise_level, 350).",
            min=0,
            rich_help_panel=SDXL_PANEL,
        ),
    ] = 20
    tile: Annotated[
        str,
        typer.Option(
            "--tile",
            help="Denoise frames in overlapping tiles of N output pixels per side, for frames "
            "larger than the model handles. auto: whole frames, or the model's native size if "
            "it has one (SDXL: 1024 px); out of memory, the tile is halved and the frame redone, "
            "down to 64 px or twice --tile-overlap. 0: always whole frames. The report records "
            "the size used.",
            parser=_tile_value,
            metavar="auto|0|N",
        ),
    ] = "auto"
    tile_overlap: Annotated[
        int, typer.Option("--tile-overlap", help="Output pixels shared by neighbouring tiles.")
    ] = 32
    crf: Annotated[
        int,
        typer.Option(
            "--crf",
            help="H.264/HEVC quality: 0 lossless, 18 near-lossless, 51 worst (FFV1 is lossless).",
            min=0,
            max=51,
        ),
    ] = 18
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            help="Video encoder: libx264, libx265 or ffv1 (lossless; .mkv/.mp4). Default: the "
            "input's when it is one of these, else libx264.",
        ),
    ] = None
    pix_fmt: Annotated[
        str | None,
        typer.Option(
            "--pix-fmt",
            help="Output pixel format, e.g. yuv420p, yuv444p, yuv420p10le. Default: the input's "
            "bit depth (8 or 10) and chroma subsampling; 4:4:4 for odd sizes.",
        ),
    ] = None
    flow_method: FlowMethodOption = "dis"
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Settings from a preset (upscale-8x, upscale-4x, inpaint, fast, sdxl-upscale-8x, "
            "sdxl-inpaint) or a YAML file; options given override it.",
        ),
    ] = None
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the merged settings as YAML and exit.")
    ] = False
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the run's summary (output, report, frames, s/frame, warping errors, "
            "sizes) as one JSON object on stdout instead of the output's path.",
        ),
    ] = False
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run after its last finished frame (state is kept in "
            ".OUT.resume/ beside the output); the result equals an uninterrupted run.",
        ),
    ] = False
    raft_model: RaftModelOption = "large"
    raft_weights: RaftWeightsOption = None
    fps: FpsOption = None
    cache_dir: CacheDirOption = None
    no_cache: NoCacheOption = False
    overwrite: OverwriteOption = False
