"""``wdiff upscale`` and ``wdiff inpaint``: one body (``wdiff.restore.job``), their shared
options declared once (``options.RestoreOptions``). On stdout: the output's path, or with
``--json`` the run's summary as one JSON object; the "wrote ..." note goes to stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wdiff.cli.app import GlobalOptions, command
from wdiff.cli.options import InputArgument, RestoreOptions, output_option
from wdiff.cli.printing import document, feedback, note, outputs

if TYPE_CHECKING:
    from wdiff.restore.job import RestoreResult

_SETTING_OF = {"flow_method": "flow"}  # option parameter -> RestoreSettings field


@command(
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
    options: GlobalOptions,
    input: InputArgument,
    output: Annotated[Path | None, output_option("INPUT.xSCALE-METHOD-NOISE.mp4")] = None,
    scale: Annotated[int, typer.Option("--scale", help="2, 4 or 8.")] = 8,
    *,
    restore: RestoreOptions,
) -> None:
    _restore(ctx, options, "sr", input, output, None, restore)


@command(
    help=(
        "Fill the masked region of every frame, temporally consistent.\n\n"
        'Example:\n\n  wdiff inpaint in.mp4 --mask mask.mp4 --prompt "a robot on a bench"'
    ),
)
def inpaint(
    ctx: typer.Context,
    options: GlobalOptions,
    input: InputArgument,
    mask: Annotated[str, typer.Option("--mask", help="Mask video, image or folder; white = fill.")],
    output: Annotated[Path | None, output_option("INPUT.inpainted-METHOD-NOISE.mp4")] = None,
    mask_dilate: Annotated[
        int, typer.Option("--mask-dilate", help="Grow the hole by N pixels (object edges).")
    ] = 0,
    feather: Annotated[
        int,
        typer.Option(
            "--feather",
            help="Blend the fill into the input over 2N pixels inside the hole's edge; outside "
            "the hole the input's pixels are always kept.",
        ),
    ] = 0,
    *,
    restore: RestoreOptions,
) -> None:
    _restore(ctx, options, "inpaint", input, output, mask, restore)


def _restore(
    ctx: typer.Context,
    options: GlobalOptions,
    task: str,
    input: str,
    output: Path | None,
    mask: str | None,
    restore: RestoreOptions,
) -> None:
    """Plan the job, print its settings (``--print-config``) or run it and say what it wrote."""
    from wdiff.restore.job import plan_restore, run_restore

    job = plan_restore(
        task,
        input,
        output,
        mask=mask,
        preset=restore.preset,
        given=_given_settings(ctx),
        seed=options.seed,
        fps=restore.fps,
        raft_weights=restore.raft_weights,
        cache_dir=restore.cache_dir,
        use_cache=not restore.no_cache,
        resume=restore.resume,
        overwrite=restore.overwrite,
    )
    if restore.print_config:
        typer.echo(job.config_yaml(), nl=False)
        return
    result = run_restore(job, options.torch_device(), feedback(options.quiet))
    if not options.quiet:
        error = result.report["mean_warping_error_previous"]
        consistency = f"; mean warping error {error:.3g}" if error is not None else ""  # a still
        note(
            f"wrote {result.output} ({result.report['seconds_per_frame']} s/frame{consistency}); "
            f"report {result.report_path}"
        )
    if restore.as_json:
        document(run_summary(result))
    else:
        outputs([result.output])


def run_summary(result: RestoreResult) -> dict:
    """``--json``: the run in one object, the report without its per-frame rows and settings."""
    from wdiff.restore.report import report_paths

    report = result.report
    errors = {key: value for key, value in report.items() if key.startswith("mean_")}
    return {
        "output": str(result.output),
        "report": str(result.report_path),
        "frames_csv": str(report_paths(result.output)[1]),
        "task": report["settings"]["task"],
        "frames": report["input"]["frames"],
        "input": report["input"],
        "output_size": report["output_size"],
        "device": report["device"],
        "seed": report["settings"]["seed"],
        "seconds_per_frame": report["seconds_per_frame"],
        "seconds": report["seconds"],
        **errors,
        "peak_memory": report["peak_memory"],
    }


def _given_settings(ctx: typer.Context) -> dict:
    """The options given on the command line (or by environment) that are run settings: they
    override the preset."""
    from wdiff.config import SETTING_NAMES

    given = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        typed = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
        if typed and _SETTING_OF.get(name, name) in SETTING_NAMES:
            given[_SETTING_OF.get(name, name)] = value
    return given
