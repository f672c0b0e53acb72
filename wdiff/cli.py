"""The ``wdiff`` command line: Typer app, global options, exit codes.

Exit codes: 0 success, 1 internal error, 2 user error (bad input or options, or a subcommand
that is not built yet), 130 interrupted. User errors print one line on stderr; ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from wdiff import __version__
from wdiff.errors import Interrupted, WdiffError

try:  # Typer >= 0.2x carries its own copy of click; older ones use click itself.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="wdiff",
    help=(
        "Temporally consistent video restoration with image diffusion models "
        "(Warped Diffusion, Daras et al. 2024).\n\n"
        "Examples:\n\n"
        "  wdiff upscale in.mp4 --scale 8 --guidance 1.0\n\n"
        '  wdiff inpaint in.mp4 --mask mask.mp4 --prompt "a robot sitting on a bench"\n\n'
        "  wdiff info builtin:bunny"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

GLOBAL = "Global options"


@dataclass
class GlobalOptions:
    """Options every subcommand honours; given before or after the subcommand's name."""

    device: str = "auto"
    seed: int = 0
    debug: bool = False
    quiet: bool = False

    def merged(
        self,
        device: str | None = None,
        seed: int | None = None,
        debug: bool = False,
        quiet: bool = False,
    ) -> GlobalOptions:
        return GlobalOptions(
            device=device if device is not None else self.device,
            seed=seed if seed is not None else self.seed,
            debug=self.debug or debug,
            quiet=self.quiet or quiet,
        )

    def torch_device(self):
        from wdiff.devices import resolve_device

        return resolve_device(self.device)


DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="cpu, cuda, cuda:N, or auto (CUDA when torch sees one).",
        rich_help_panel=GLOBAL,
        show_default=False,
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Random seed: same seed, input and device, same output.",
        rich_help_panel=GLOBAL,
        show_default=False,
    ),
]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show tracebacks on errors.", rich_help_panel=GLOBAL)
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display.", rich_help_panel=GLOBAL)
]


def _finite(value: float | None) -> float | None:
    """Typer callback of every float option: NaN and infinities are refused (click's FloatRange
    lets them through, and a NaN setting would run and write a report JSON cannot read)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _positive(value: float | None) -> float | None:
    if _finite(value) is not None and value <= 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


InputArgument = Annotated[str, typer.Argument(help="Video file, frame folder, or builtin:bunny.")]
FpsOption = Annotated[
    float | None,
    typer.Option("--fps", help="Frame rate of a frame folder (default 24).", callback=_positive),
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
RaftModelOption = Annotated[
    str, typer.Option("--raft-model", help="--flow raft: large or small (torchvision's).")
]
RaftWeightsOption = Annotated[
    Path | None,
    typer.Option("--raft-weights", help="Local RAFT weights (.pth); else torch's hub cache."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wdiff {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    device: Annotated[
        str, typer.Option("--device", help="cpu, cuda, cuda:N, or auto (CUDA when present).")
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = GlobalOptions(device=device, seed=seed, debug=debug, quiet=quiet)
    if device != "auto":
        ctx.obj.torch_device()


def _options(ctx: typer.Context, device, seed, debug, quiet) -> GlobalOptions:
    """The global options merged with the subcommand's own copies; the device is checked."""
    options = (ctx.obj or GlobalOptions()).merged(device, seed, debug, quiet)
    options.torch_device()
    return options


@app.command(
    help=(
        "Show what wdiff sees in a video or frame folder: size, frame rate, frames, audio.\n\n"
        "Example:\n\n  wdiff info in.mp4 --json"
    )
)
def info(
    ctx: typer.Context,
    input: InputArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fps: FpsOption = None,
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    from wdiff.video import open_video

    _options(ctx, device, seed, debug, quiet)

    reader = open_video(input, fps=fps)
    meta = reader.info
    fields = {
        "path": str(meta.path),
        "width": meta.width,
        "height": meta.height,
        "fps": f"{meta.fps.numerator}/{meta.fps.denominator}",
        "frames": meta.frame_count,
        "duration_s": round(meta.duration, 6),
        "rotation": meta.rotation,
        "audio": meta.has_audio,
        "frame_folder": meta.is_folder,
    }
    if as_json:
        typer.echo(json.dumps(fields))
    else:
        for key, value in fields.items():
            typer.echo(f"{key:>12}: {value}")


def default_output(source: Path, suffix: str) -> Path:
    """``clip.mp4`` -> ``clip<suffix>`` beside it; for a bundled clip, in the current folder."""
    from wdiff.video import SAMPLE_CLIPS

    folder = (
        Path.cwd()
        if source.parent.name == "data" and source.name in SAMPLE_CLIPS.values()
        else source.parent
    )
    return (
        folder / f"{source.stem if source.suffix and not source.is_dir() else source.name}{suffix}"
    )


def _video_flows(reader, estimator, cache, label: str, quiet: bool):
    """The video's flows (from the cache when it has them), with a progress bar."""
    from wdiff.flow import estimate_video_flows
    from wdiff.progress import progress_bar

    with progress_bar(f"flow ({label})", reader.info.frame_count - 1, quiet) as advance:
        result = estimate_video_flows(reader, estimator, cache=cache, advance=advance)
    if cache.unwritten and not quiet:
        _warn(f"the flows were not cached ({cache.unwritten[0]}); the next run computes them again")
    return result


def _check_suffix(path: Path, suffix: str, option: str) -> None:
    if path.suffix.lower() != suffix:
        raise WdiffError(f"{path}: {option} writes a {suffix} file; give a name ending {suffix}")


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _warn(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"wdiff: warning: {message}", style="yellow", markup=False
    )


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(
    help=(
        "Estimate forward/backward optical flow and validity masks between consecutive frames.\n\n"
        "Writes a safetensors file with forward, backward (float (N-1, 2, H, W), pixels, "
        "(dx, dy)) and valid_forward, valid_backward (bool (N-1, 1, H, W)). Flows are cached "
        "by the video's content and the estimator's settings.\n\n"
        "Examples:\n\n"
        "  wdiff flow in.mp4 -o flows.safetensors --viz flow.mp4\n\n"
        "  wdiff flow frames/ --fps 30 --method raft --raft-weights raft_large.pth"
    )
)
def flow(
    ctx: typer.Context,
    input: InputArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Flows file.", show_default="INPUT.flows.safetensors"),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="dis, farneback or raft.")] = "dis",
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
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    from wdiff import flow as flows
    from wdiff.outputs import check_output
    from wdiff.video import MaskReader, check_video_output, open_video, resolve_input

    options = _options(ctx, device, seed, debug, quiet)
    source = resolve_input(input)
    output = output or default_output(source, ".flows.safetensors")
    _check_suffix(output, ".safetensors", "-o")
    mask_path = resolve_input(mask) if mask else None
    inputs = [source] + ([mask_path] if mask_path else [])
    check_output(output, inputs, overwrite)
    if viz is not None:
        check_video_output(viz)
        check_output(viz, inputs + [output], overwrite)
    reader = open_video(source, fps=fps)
    flows.check_enough_frames(reader.info)
    masks = MaskReader(mask_path, reader.info) if mask_path else None
    estimator = flows.make_estimator(
        method,
        dis_preset=dis_preset,
        raft_model=raft_model,
        raft_weights=raft_weights,
        device=options.torch_device(),
        option="--method",
    )
    cache = flows.TensorCache(None if no_cache else cache_dir or flows.default_cache_dir())
    field, cached = _video_flows(reader, estimator, cache, method, options.quiet)
    if masks is not None:
        field = flows.complete_field(field, list(masks.frames()))
    field.save(output)
    if viz is not None:
        flows.write_flow_video(reader, field, viz)
    if not options.quiet:
        _note(f"wrote {output}" + (" (flows from the cache)" if cached else ""))
        for path in cache.discarded:
            _note(f"discarded a damaged cache entry {path}; recomputed")
        if viz is not None:
            _note(f"wrote {viz}")


@app.command(
    "warp-noise",
    help=(
        "Warp diffusion noise along a video's optical flow and save it.\n\n"
        "Writes a safetensors file with `noise`, float32 (N, C, h, w), on a grid GRID times "
        "coarser than the frames. Methods: gp (the paper's GP noise by Random Fourier "
        "Features), integral (How I Warped Your Noise), bilinear, nearest, fixed, resample.\n\n"
        "Examples:\n\n"
        "  wdiff warp-noise in.mp4 --method gp -o noise.safetensors --grid 8\n\n"
        "  wdiff warp-noise in.mp4 --method integral --stats stats.json --viz noise.mp4"
    ),
)
def warp_noise(
    ctx: typer.Context,
    input: InputArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Noise file.", show_default="INPUT.noise-METHOD.safetensors"
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method", help="gp, integral, bilinear, bilinear-gp, nearest, fixed or resample."
        ),
    ] = "gp",
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
    flow_method: Annotated[str, typer.Option("--flow", help="dis, farneback or raft.")] = "dis",
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
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    import torch

    from wdiff import flow as flows
    from wdiff import noise as noises
    from wdiff.devices import check_memory
    from wdiff.outputs import atomic_output, check_output, save_tensors
    from wdiff.progress import progress_bar
    from wdiff.video import check_video_output, open_video, resolve_input

    options = _options(ctx, device, seed, debug, quiet)
    warper = noises.make_warper(
        method, "--method", **({"extend": True} if gp_extend and method == "gp" else {})
    )
    source = resolve_input(input)
    output = output or default_output(source, f".noise-{method}.safetensors")
    _check_suffix(output, ".safetensors", "-o")
    check_output(output, [source], overwrite)
    if stats is not None:
        _check_suffix(stats, ".json", "--stats")
    for extra in (stats, viz):
        if extra is not None:
            check_output(extra, [source, output], overwrite)
    if viz is not None:
        check_video_output(viz)
    reader = open_video(source, fps=fps)
    flows.check_enough_frames(reader.info)
    torch_device = options.torch_device()
    estimator = flows.make_estimator(
        flow_method, raft_model=raft_model, raft_weights=raft_weights, device=torch_device
    )
    cache = flows.TensorCache(None if no_cache else cache_dir or flows.default_cache_dir())
    frames = reader.info.frame_count
    h, w = noises.grid_shape(reader.info.width, reader.info.height, grid)
    check_memory(
        noises.noise_memory_bytes(warper, frames, channels, h, w),
        torch_device,
        f"--channels {channels} --grid {grid} ({frames} frames of {w}x{h} cells)",
        "use fewer --channels, a coarser --grid or a shorter clip",
    )
    field, _ = _video_flows(reader, estimator, cache, flow_method, options.quiet)
    all_noise, rows, previous = [], [], None
    with progress_bar(f"noise ({method})", frames, options.quiet) as advance:
        for index, (noise, motion) in enumerate(
            noises.warp_video_noise(field, warper, channels, options.seed, grid, torch_device)
        ):
            rows.append({"frame": index, **noises.frame_stats(noise, previous, motion)})
            all_noise.append(noise.cpu())
            previous = noise
            advance(1)
    tensor = torch.cat(all_noise).float().contiguous()
    metadata = {
        "method": method,
        "seed": str(options.seed),
        "grid": str(grid),
        "channels": str(channels),
        "source": source.name,
        "flow": flow_method,
        "gp_extend": str(gp_extend).lower(),
    }
    save_tensors({"noise": tensor}, output, metadata)
    if stats is not None:
        with atomic_output(stats) as temporary:
            temporary.write_text(json.dumps({**metadata, "frames": rows}, indent=2) + "\n")
    if viz is not None:
        noises.write_noise_video(reader, tensor, viz)
    if not options.quiet:
        for path in (output, stats, viz):
            if path is not None:
                _note(f"wrote {path}")


ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="builtin (the shipped model for the task), a `wdiff finetune` run folder or model "
        "file, or a local diffusers SDXL folder.",
    ),
]


def _tile_value(value: str | int) -> int | str:
    from wdiff.config import parse_tile

    try:
        return parse_tile(value)
    except WdiffError as error:
        raise typer.BadParameter("use auto, 0 (whole frames) or pixels per tile side") from error


TileOption = Annotated[
    str,
    typer.Option(
        "--tile",
        help="Denoise frames in overlapping tiles of N output pixels per side, for frames "
        "larger than the model handles. auto: whole frames, or the model's native size if it "
        "has one (SDXL: 1024 px); out of memory, the tile is halved and the frame redone, down "
        "to 64 px or twice --tile-overlap. 0: always whole frames. The report records the "
        "size used.",
        parser=_tile_value,
        metavar="auto|0|N",
    ),
]
TileOverlapOption = Annotated[
    int, typer.Option("--tile-overlap", help="Output pixels shared by neighbouring tiles.")
]
SDXL_PANEL = "SDXL memory and precision"
DtypeOption = Annotated[
    str,
    typer.Option(
        "--dtype", help="UNet/text encoders: bf16, fp16 or fp32.", rich_help_panel=SDXL_PANEL
    ),
]
VaeTilingOption = Annotated[
    bool,
    typer.Option("--vae-tiling", help="Decode large frames in tiles.", rich_help_panel=SDXL_PANEL),
]
VaeSlicingOption = Annotated[
    bool, typer.Option("--vae-slicing", help="VAE one image at a time.", rich_help_panel=SDXL_PANEL)
]
CpuOffloadOption = Annotated[
    bool,
    typer.Option(
        "--cpu-offload",
        help="Keep the VAE and text encoders on the CPU between uses.",
        rich_help_panel=SDXL_PANEL,
    ),
]
NoiseMethodOption = Annotated[
    str,
    typer.Option(
        "--noise", help="gp, integral, bilinear, bilinear-gp, nearest, fixed or resample."
    ),
]
MethodOption = Annotated[
    str, typer.Option("--method", help="warped (ours) or batch-consistent (Kwon & Ye).")
]
StepsOption = Annotated[int, typer.Option("--steps", help="Sampling steps.", min=1)]
GuidanceOption = Annotated[
    float,
    typer.Option("--guidance", help="Self-guidance strength lambda (0 = off).", callback=_finite),
]
GuidanceModeOption = Annotated[
    str,
    typer.Option("--guidance-mode", help="full (through the network) or cheap (no backprop)."),
]
GuidanceFractionOption = Annotated[
    float,
    typer.Option(
        "--guidance-fraction", help="Share of steps guided, from the first.", callback=_finite
    ),
]
FirstGuidanceOption = Annotated[
    float,
    typer.Option(
        "--first-guidance", help="Extra pull toward frame 0 (stops drift).", callback=_finite
    ),
]
PromptOption = Annotated[
    str | None, typer.Option("--prompt", help="Text prompt (text-conditioned models only).")
]
FlowMethodOption = Annotated[str, typer.Option("--flow", help="dis, farneback or raft.")]


def _output_option(named: str) -> typer.models.OptionInfo:
    return typer.Option(
        "--output", "-o", help="Output video.", show_default=f"beside the input: {named}"
    )


UpscaleOutputOption = Annotated[Path | None, _output_option("INPUT.xSCALE-METHOD-NOISE.mp4")]
InpaintOutputOption = Annotated[Path | None, _output_option("INPUT.inpainted-METHOD-NOISE.mp4")]


_SETTING_OF = {"flow_method": "flow"}  # option parameter -> RestoreSettings field


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Settings from a preset (upscale-8x, upscale-4x, inpaint, fast, sdxl-upscale-8x, "
        "sdxl-inpaint) or a YAML file; options given override it.",
    ),
]
PrintConfigOption = Annotated[
    bool, typer.Option("--print-config", help="Print the merged settings as YAML and exit.")
]


ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue an interrupted run after its last finished frame (state is kept in "
        ".OUT.resume/ beside the output); the result equals an uninterrupted run.",
    ),
]


def _run_state(output: Path, settings, inputs: list[Path], resume: bool, overwrite: bool, quiet):
    """The resume state of this output, after checking what is already there."""
    from wdiff import __version__
    from wdiff.flow.cache import content_digest
    from wdiff.resume import RunState, remove_stale_partials

    fingerprint = {
        "settings": settings.to_dict(),
        "inputs": [content_digest(path) if path.is_file() else str(path) for path in inputs],
        "version": __version__,
    }
    state = RunState(output, fingerprint)
    if state.exists() and not resume:
        if not overwrite:
            raise WdiffError(
                f"{output}: an interrupted run left its state in {state.folder}; add --resume to "
                "continue it or --overwrite to start over"
            )
        state.remove()
    if resume and not state.exists() and not quiet:
        _note(f"{output}: no interrupted run to resume; starting from the first frame")
    remove_stale_partials(output)
    return state


@contextlib.contextmanager
def _resume_hint(run_state):
    """Ctrl-C -> one line saying how many frames are kept and how to continue."""
    try:
        yield
    except KeyboardInterrupt:
        done = run_state.frames_done() if run_state is not None else 0
        if not done:
            raise Interrupted("no frame was finished; no output was written") from None
        raise Interrupted(
            f"{done} finished frame{'s' if done > 1 else ''} kept in {run_state.folder}; "
            "rerun the same command with --resume to continue"
        ) from None


@contextlib.contextmanager
def _memory_advice(settings, info):
    """Out of memory -> one line naming what to try (the partial output is removed, the resume
    state kept)."""
    from wdiff.diffusion.tiling import TilesExhausted, is_out_of_memory

    try:
        yield
    except RuntimeError as error:  # torch.OutOfMemoryError, a CPU allocation failure, ...
        if not (isinstance(error, TilesExhausted) or is_out_of_memory(error)):
            raise
        factor = settings.scale if settings.task == "sr" else 1
        size = f"{info.width * factor}x{info.height * factor}"
        tried = ""
        tips = "--tile 512, --dtype fp16, --vae-tiling, --vae-slicing, --cpu-offload"
        if isinstance(error, TilesExhausted):
            tried = f" even in --tile auto's smallest tiles ({error.pixels} px)"
            tips = "--dtype fp16, --cpu-offload, a fixed --tile below that with less --tile-overlap"
        if settings.guidance_mode == "full" and settings.guidance > 0:
            tips = "--guidance-mode cheap (no backpropagation), " + tips
        raise WdiffError(
            f"out of memory sampling {size} frames on {_device_name(error)}{tried}; try "
            f"{tips}, a smaller --scale or --device cpu, then --resume"
        ) from error


def _tile_lowered(quiet: bool):
    """``restore``'s ``on_tile``: one warning on stderr for each frame that --tile auto had to
    sample in smaller tiles than the frame before (normally once a run)."""
    if quiet:
        return None
    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def warn(frame: int, old: int, new: int) -> None:
        was = f"{old} px tiles" if old else "whole frames"
        console.print(
            f"wdiff: warning: out of memory at frame {frame} with {was}; sampling in {new} px "
            f"tiles from that frame on (--tile {new} starts there)",
            style="yellow",
            markup=False,
        )

    return warn


def _device_name(error: Exception) -> str:
    return "the GPU" if "CUDA" in str(error) or "cuda" in str(error) else "this device"


def _restore(ctx: typer.Context, task: str) -> None:
    """The body of ``upscale`` and ``inpaint``: their options are read from ``ctx.params``;
    those that are run settings override the preset only where given on the command line."""
    import time

    from wdiff import flow as flows
    from wdiff.config import SETTING_NAMES, merge_settings, settings_yaml
    from wdiff.outputs import check_output
    from wdiff.pipeline import load_denoiser, report_paths, restore, write_report
    from wdiff.progress import frame_and_step_bars
    from wdiff.video import (
        IMAGE_SUFFIXES,
        MaskReader,
        check_video_output,
        open_video,
        resolve_input,
    )

    params = ctx.params
    options = _options(ctx, params["device"], params["seed"], params["debug"], params["quiet"])
    input, output, mask = params["input"], params["output"], params.get("mask")
    preset, overwrite = params["preset"], params["overwrite"]
    given = {
        _SETTING_OF.get(name, name): value
        for name, value in params.items()
        if _SETTING_OF.get(name, name) in SETTING_NAMES and _from_command_line(ctx, name)
    }
    settings = merge_settings(task, preset, given | {"seed": options.seed})
    source = resolve_input(input)
    mask_path = resolve_input(mask) if mask else None
    kind = ".png" if source.suffix.lower() in IMAGE_SUFFIXES else ".mp4"  # an image gives one
    if settings.task == "sr":
        suffix = f".x{settings.scale}-{settings.method}-{settings.noise}{kind}"
    else:
        suffix = f".inpainted-{settings.method}-{settings.noise}{kind}"
    output = output or default_output(source, suffix)
    inputs = [source] + ([mask_path] if mask_path else [])
    if params["print_config"]:
        extra = {"input": str(source), "output": str(output)}
        typer.echo(
            settings_yaml(settings, preset, extra | ({"mask": str(mask_path)} if mask else {})),
            nl=False,
        )
        return
    check_video_output(output)
    check_output(output, inputs, overwrite)
    for path in report_paths(output):
        check_output(path, inputs, overwrite)
    reader = open_video(source, fps=params["fps"])
    check_video_output(output, reader.info.frame_count)
    masks = MaskReader(mask_path, reader.info) if mask_path else None
    run_state = _run_state(output, settings, inputs, params["resume"], overwrite, options.quiet)
    device = options.torch_device()
    estimator = flows.make_estimator(
        settings.flow,
        raft_model=settings.raft_model,
        raft_weights=params["raft_weights"],
        device=device,
    )
    cache_dir = None if params["no_cache"] else params["cache_dir"] or flows.default_cache_dir()
    cache = flows.TensorCache(cache_dir)
    began = time.perf_counter()
    denoiser = load_denoiser(settings, device)  # before the long work: a bad model fails fast
    if settings.prompt and not getattr(denoiser, "takes_prompt", False) and not options.quiet:
        name = "the built-in model" if settings.model == "builtin" else settings.model
        _warn(f"--prompt is ignored: {name} is not text-conditioned (use an SDXL --model)")
    stages = {"load_model": time.perf_counter() - began}
    began = time.perf_counter()
    field = None  # a single frame (a still image) needs no flow
    if reader.info.frame_count > 1:
        field, _ = _video_flows(reader, estimator, cache, settings.flow, options.quiet)
        if masks is not None:
            field = flows.complete_field(field, list(masks.frames()))
    stages["flow"] = time.perf_counter() - began
    label = f"upscale x{settings.scale}" if task == "sr" else "inpaint"
    bars = frame_and_step_bars(
        f"{label} (frames)", reader.info.frame_count, settings.steps, options.quiet
    )
    with bars as (advance, on_step), _memory_advice(settings, reader.info), _resume_hint(run_state):
        report = restore(
            reader,
            field,
            output,
            settings,
            device,
            masks,
            advance,
            stages,
            denoiser,
            run_state,
            on_step,
            _tile_lowered(options.quiet),
        )
    json_path, _ = write_report(report, output)
    if run_state is not None:
        run_state.remove()
    if not options.quiet:
        error = report["mean_warping_error_previous"]
        consistency = f"; mean warping error {error:.3g}" if error is not None else ""  # a still
        _note(
            f"wrote {output} ({report['seconds_per_frame']} s/frame{consistency}); "
            f"report {json_path}"
        )


@app.command(
    help=(
        "Upscale a video with an image diffusion model, temporally consistent (Warped "
        "Diffusion).\n\n"
        "Examples:\n\n"
        "  wdiff upscale low.mp4 --scale 8 --guidance 1.0\n\n"
        "  wdiff upscale low.mp4 --scale 4 --method batch-consistent -o out.mp4\n\n"
        "  wdiff degrade clip.mp4 --scale 8 -o low.mp4  (make a low-res test input)"
    ),
)
def upscale(
    ctx: typer.Context,
    input: InputArgument,
    output: UpscaleOutputOption = None,
    scale: Annotated[int, typer.Option("--scale", help="2, 4 or 8.")] = 8,
    model: ModelOption = "builtin",
    noise: NoiseMethodOption = "gp",
    method: MethodOption = "warped",
    steps: StepsOption = 25,
    guidance: GuidanceOption = 1.0,
    guidance_mode: GuidanceModeOption = "full",
    guidance_fraction: GuidanceFractionOption = 1.0,
    first_guidance: FirstGuidanceOption = 0.0,
    prompt: PromptOption = None,
    dtype: DtypeOption = "bf16",
    vae_tiling: VaeTilingOption = False,
    vae_slicing: VaeSlicingOption = False,
    cpu_offload: CpuOffloadOption = False,
    tile: TileOption = "auto",
    tile_overlap: TileOverlapOption = 32,
    flow_method: FlowMethodOption = "dis",
    preset: PresetOption = None,
    print_config: PrintConfigOption = False,
    resume: ResumeOption = False,
    raft_model: RaftModelOption = "large",
    raft_weights: RaftWeightsOption = None,
    fps: FpsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    overwrite: OverwriteOption = False,
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    _restore(ctx, "sr")


@app.command(
    help=(
        "Fill the masked region of every frame, temporally consistent.\n\n"
        'Example:\n\n  wdiff inpaint in.mp4 --mask mask.mp4 --prompt "a robot on a bench"'
    ),
)
def inpaint(
    ctx: typer.Context,
    input: InputArgument,
    mask: Annotated[str, typer.Option("--mask", help="Mask video, image or folder; white = fill.")],
    output: InpaintOutputOption = None,
    model: ModelOption = "builtin",
    noise: NoiseMethodOption = "gp",
    method: MethodOption = "warped",
    steps: StepsOption = 25,
    guidance: GuidanceOption = 1.0,
    guidance_mode: GuidanceModeOption = "full",
    guidance_fraction: GuidanceFractionOption = 1.0,
    first_guidance: FirstGuidanceOption = 0.0,
    prompt: PromptOption = None,
    dtype: DtypeOption = "bf16",
    vae_tiling: VaeTilingOption = False,
    vae_slicing: VaeSlicingOption = False,
    cpu_offload: CpuOffloadOption = False,
    tile: TileOption = "auto",
    tile_overlap: TileOverlapOption = 32,
    flow_method: FlowMethodOption = "dis",
    preset: PresetOption = None,
    print_config: PrintConfigOption = False,
    resume: ResumeOption = False,
    raft_model: RaftModelOption = "large",
    raft_weights: RaftWeightsOption = None,
    fps: FpsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    overwrite: OverwriteOption = False,
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    _restore(ctx, "inpaint")


@app.command(
    help=(
        "Make a low-resolution copy (area average; sizes cropped to multiples of the scale), "
        "fps and audio kept: a test input whose ground truth you have.\n\n"
        "Example:\n\n  wdiff degrade clip.mp4 --scale 8 -o low.mp4"
    ),
)
def degrade(
    ctx: typer.Context,
    input: InputArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output video.")],
    scale: Annotated[int, typer.Option("--scale", help="Downscale factor.", min=1)] = 8,
    fps: FpsOption = None,
    overwrite: OverwriteOption = False,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    from wdiff.outputs import check_output
    from wdiff.tasks import SuperResolution
    from wdiff.video import (
        VideoWriter,
        check_video_output,
        frames_to_tensor,
        open_video,
        resolve_input,
        tensor_to_frames,
    )

    options = _options(ctx, None, None, debug, quiet)
    source = resolve_input(input)
    check_video_output(output)
    check_output(output, [source], overwrite)
    reader = open_video(source, fps=fps)
    check_video_output(output, reader.info.frame_count)
    info = reader.info
    height, width = info.height // scale * scale, info.width // scale * scale
    if not height or not width:
        raise WdiffError(f"{source}: {info.width}x{info.height} is smaller than --scale {scale}")
    task = SuperResolution(scale)
    with VideoWriter(output, info.fps, crf=12, audio_from=info) as writer:
        for frame in reader.frames():
            tensor = frames_to_tensor(frame[:height, :width])
            writer.write(tensor_to_frames(task.degrade(tensor)))
    if not options.quiet:
        _note(f"wrote {output} ({width // scale}x{height // scale})")


@app.command(
    "eval",
    help=(
        "Measure temporal consistency (warping error to the previous and the first frame, "
        "flicker, tOF) and, given a reference, fidelity (PSNR, SSIM, MSE) of videos.\n\n"
        "All outputs are scored on one set of flows: --flows, else flows estimated on "
        "--flow-from (e.g. the low-res input, rescaled), else on --reference, else on the first "
        "output. Prints a summary; -o, --csv and --plot write files.\n\n"
        "Examples:\n\n"
        "  wdiff eval out.mp4 --reference gt.mp4 --flow-from in.mp4 -o eval.json\n\n"
        "  wdiff eval guided.mp4 unguided.mp4 --flow-from low.mp4 --plot eval.png --csv eval.csv"
    ),
)
def evaluate(
    ctx: typer.Context,
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
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    from wdiff import evaluate as scoring
    from wdiff import flow as flows
    from wdiff import perceptual
    from wdiff.outputs import check_output
    from wdiff.progress import progress_bar
    from wdiff.video import open_video, resolve_input

    options = _options(ctx, device, seed, debug, quiet)
    if flows_file is not None and flow_from is not None:
        raise WdiffError("give --flows or --flow-from, not both")
    sources = [resolve_input(video) for video in videos]
    reference_path = resolve_input(reference) if reference else None
    inputs = sources + [p for p in (reference_path, flows_file) if p is not None]
    written = []
    for path, suffix in ((output, ".json"), (csv_path, ".csv"), (plot, ".png")):
        if path is not None:
            if path.suffix.lower() != suffix:
                raise WdiffError(f"{path}: give a {suffix} file name")
            check_output(path, inputs + written, overwrite)
            written.append(path)
    readers = [open_video(path, fps=fps) for path in sources]
    reference_reader = open_video(reference_path, fps=fps) if reference_path else None
    for reader in readers if reference_reader is not None else []:  # before the flows' work
        info = reader.info
        scoring.check_matching(
            reference_reader, info.frame_count, (info.width, info.height), str(info.path)
        )
    torch_device = options.torch_device()
    estimator = flows.make_estimator(
        flow_method, raft_model=raft_model, raft_weights=raft_weights, device=torch_device
    )
    if flows_file is not None:
        field, flow_source = flows.FlowField.load(flows_file), f"file {flows_file}"
    else:
        if flow_from is not None:
            flow_reader, role = open_video(resolve_input(flow_from), fps=fps), "--flow-from"
        elif reference_reader is not None:
            flow_reader, role = reference_reader, "the reference"
        else:
            flow_reader, role = readers[0], "the first video"
        flows.check_enough_frames(flow_reader.info)
        cache = flows.TensorCache(None if no_cache else cache_dir or flows.default_cache_dir())
        field, _ = _video_flows(flow_reader, estimator, cache, flow_method, options.quiet)
        flow_source = f"{flow_method} on {role} ({flow_reader.info.path})"
    if clip_model is not None and not prompt:
        raise WdiffError("--clip-model needs --prompt (the text to score the frames against)")
    weighted = scoring.WeightedMetrics(
        lpips=perceptual.LPIPSMetric(lpips_weights, torch_device) if lpips_weights else None,
        inception=perceptual.InceptionFeatures(fid_weights, torch_device) if fid_weights else None,
        clip=perceptual.CLIPScore(clip_model, prompt, torch_device) if clip_model else None,
        latent_model=_latent_encoder(model, torch_device) if model else None,
    )
    total = sum(reader.info.frame_count for reader in readers)
    scores = []
    with progress_bar("eval (frames)", total, options.quiet) as advance:
        for reader in readers:
            scores.append(
                scoring.score_video(
                    reader, field, reference_reader, estimator, torch_device, advance, weighted
                )
            )
    names = [s.name for s in scores]
    for index, s in enumerate(scores):
        if names.count(s.name) > 1:
            s.name = f"{s.name}#{index + 1}"
    skipped = scoring.skipped_metrics(reference_reader is not None, True, weighted)
    document = scoring.result_document(scores, flow_source, skipped)
    _print_eval_summary(scores, document)
    if output is not None:
        scoring.write_json(document, output)
    if csv_path is not None:
        scoring.write_csv(scores, csv_path)
    if plot is not None:
        scoring.write_plot(scores, plot)
    if not options.quiet:
        for path in written:
            _note(f"wrote {path}")


def _latent_encoder(model: Path, device):
    from wdiff.models.sdxl import LatentEncoder, is_sdxl_folder

    if str(model).startswith("builtin") or not is_sdxl_folder(model):
        raise WdiffError(
            f"--model {model}: give a diffusers SDXL folder; the built-in models work in pixel "
            "space, where the pixel errors are the latent ones"
        )
    return LatentEncoder(model, device)


def _print_eval_summary(scores, document: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from wdiff.evaluate import LABELS, PER_FRAME

    keys = [k for k in (*PER_FRAME, "fid") if any(k in s.summary() for s in scores)]
    table = Table(title=f"flows: {document['flow_source']}", title_justify="left")
    table.add_column("video")
    for key in keys:
        table.add_column(LABELS[key], justify="right")
    for s in scores:
        summary = s.summary()
        cells = [
            f"{summary[k]['mean']:.4g} ± {summary[k]['std']:.2g}" if k in summary else "-"
            for k in keys
        ]
        table.add_row(s.name, *cells)
    console = Console(width=200)
    console.print(table)
    for key, reason in document["skipped"].items():
        console.print(f"skipped {key}: {reason}", style="dim", highlight=False)


@app.command(
    help=(
        "Train a conditional diffusion model with GP or white noise (EDM loss, Accelerate).\n\n"
        "Examples:\n\n"
        "  wdiff finetune --task sr --noise gp --data samples --out runs/sr-gp --steps 4000\n\n"
        "  wdiff finetune --task inpaint --data frames/ --out runs/inp --resume\n\n"
        "  accelerate launch -m wdiff finetune --task sr --out runs/sr --batch-size 64"
    ),
)
def finetune(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Run folder: model, log, loss plot.")],
    task: Annotated[str, typer.Option("--task", help="sr (scales 2, 4, 8) or inpaint.")] = "sr",
    noise: Annotated[str, typer.Option("--noise", help="gp or white.")] = "gp",
    data: Annotated[
        str, typer.Option("--data", help="samples (media shipped in packages) or a folder.")
    ] = "samples",
    arch: Annotated[
        str, typer.Option("--arch", help="builtin-small, builtin-tiny, or a local SDXL folder.")
    ] = "builtin-small",
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps in all.", min=1)] = 4000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step.", min=1)] = 16,
    crop: Annotated[int, typer.Option("--crop", help="Crop size in pixels.", min=16)] = 64,
    lr: Annotated[
        float,
        typer.Option("--lr", help="AdamW learning rate (SDXL: 5e-6).", callback=_positive),
    ] = 5e-4,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", help="Steps between checkpoints.", min=1)
    ] = 500,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.")] = False,
    device: DeviceOption = None,
    seed: SeedOption = None,
    debug: DebugOption = False,
    quiet: QuietOption = False,
) -> None:
    from wdiff.progress import progress_bar
    from wdiff.train import TrainSettings
    from wdiff.train import finetune as run_finetune

    options = _options(ctx, device, seed, debug, quiet)
    if crop % 8:
        raise WdiffError(f"--crop {crop}: use a multiple of 8 (SR scales go up to 8)")
    settings = TrainSettings(
        task=task,
        noise=noise,
        data=data,
        out=str(out),
        arch=arch,
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        seed=options.seed,
        checkpoint_every=checkpoint_every,
        resume=resume,
        cpu=options.torch_device().type == "cpu",
    )
    with progress_bar(f"finetune {task} ({noise} noise)", steps, options.quiet) as advance:
        last = [0]

        def report(step: int, total: int, loss: float) -> None:
            advance(step - last[0])
            last[0] = step

        try:
            summary = run_finetune(settings, report)
        except KeyboardInterrupt:
            state = out / "checkpoint" / "state.json"
            if not state.is_file():
                raise Interrupted(
                    f"no checkpoint yet in {out} (one every {checkpoint_every} steps)"
                ) from None
            step = json.loads(state.read_text())["step"]
            raise Interrupted(
                f"the checkpoint at step {step} is kept in {state.parent}; rerun the same "
                "command with --resume to continue"
            ) from None
    if summary:
        result = out if Path(arch).is_dir() else out / "model.safetensors"
        _note(
            f"{result}: {summary['steps_this_run']} steps in "
            f"{summary['seconds_this_run']} s on {summary['device']}"
        )


def _one_line(error: Exception) -> str:
    """A user error's message on one line, whatever a library it quotes put in it."""
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wdiff`` script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = app(args=args, prog_name="wdiff", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # Ctrl-C outside the long work: typer turns it into Exit(130), returned
            err.print("wdiff: interrupted; no output was written", markup=False)
    except click_exceptions.NoArgsIsHelpError as error:
        typer.echo(error.ctx.get_help() if error.ctx else "", err=True)
        code = 2
    except click_exceptions.UsageError as error:
        where = error.ctx.command_path if error.ctx else "wdiff"
        err.print(f"{where}: error: {error.format_message()} (see '{where} --help')", markup=False)
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("wdiff: interrupted; no output was written", markup=False)
        code = 130
    except Interrupted as interrupted:
        err.print(f"wdiff: interrupted; {interrupted}", markup=False)
        code = 130
    except WdiffError as error:
        if debug:
            traceback.print_exc()
        err.print(f"wdiff: error: {_one_line(error)}", markup=False)
        code = 2
    except typer.Exit as done:
        code = done.exit_code
    except Exception as error:  # internal error: one line, traceback with --debug
        if debug:
            traceback.print_exc()
        err.print(
            f"wdiff: internal error: {type(error).__name__}: {error} "
            "(rerun with --debug for the traceback and report it)",
            markup=False,
        )
        code = 1
    if argv is None:
        sys.exit(code)
    return code
