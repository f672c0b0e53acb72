"""``wdiff upscale`` and ``wdiff inpaint``: one body (``wdiff.restore.job``), their shared
options declared once (``options.RestoreOptions``). On stdout: the output's path, or with
``--json`` the run's summary as one JSON object; the "wrote ..." note goes to stderr.

Several inputs (or a folder of videos, or a launcher's processes) go through
``wdiff.restore.batch``: one output per input, a summary table on stderr, the outputs' paths (or
one JSON object per input) on stdout, exit code 0 only when every input is done."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wdiff.cli.app import COMMAND_LINE, GlobalOptions, Renamed, command
from wdiff.cli.options import RestoreOptions, output_option
from wdiff.cli.printing import document, feedback, note, outputs, warn
from wdiff.errors import WdiffError

if TYPE_CHECKING:
    from wdiff.feedback import Feedback
    from wdiff.restore.batch import Outcome
    from wdiff.restore.job import RestoreResult

_SETTING_OF = {"flow_method": "flow"}  # option parameter -> RestoreSettings field


_MANY = (
    "Several inputs run one after another, each written under its default name (into -o's "
    "folder when given, made if missing), with its own report and resume state. A folder "
    "holding video files stands for those videos (in natural order; files named like a wdiff "
    "result of another video there are left out); a folder of PNG/JPG frames is one video. A "
    "failing input does not stop the others; at the end a table (input, output, frames, "
    "seconds, status) goes to stderr, one line per failed input, and the outputs' paths to "
    "stdout (--json: one object per input, per line). Exit code 0 when every input is done "
    "or skipped, 2 when any failed (1 if by an internal error). --resume skips finished "
    "outputs and continues interrupted ones. Under accelerate launch --num_processes N -m "
    "wdiff ... (or torchrun) each process runs its share of the inputs on its own device; the "
    "main process prints the summary."
)
_INPUTS_HELP = "Video files, frame folders, folders of video files, or builtin:bunny."
InputsArgument = Annotated[list[str], typer.Argument(help=_INPUTS_HELP, show_default=False)]
_RENAMED = (Renamed("--method", "--sampler", "warped or batch-consistent"),)


@command(
    help=(
        "Upscale videos with an image diffusion model, temporally consistent (Warped "
        f"Diffusion).\n\n{_MANY}\n\n"
        "Examples:\n\n"
        "  wdiff upscale low.mp4 --scale 8 --guidance 1.0\n\n"
        "  wdiff upscale low.mp4 --scale 4 --sampler batch-consistent -o out.mp4\n\n"
        "  wdiff upscale a.mp4 b.mp4 clips/ --scale 4 -o out/\n\n"
        "  accelerate launch --num_processes 4 -m wdiff upscale clips/ --scale 4 -o out/ "
        "--resume\n\n"
        "  wdiff degrade clip.mp4 --scale 8 -o low.mp4  (make a low-res test input)"
    ),
    renamed=_RENAMED,
)
def upscale(
    ctx: typer.Context,
    options: GlobalOptions,
    inputs: InputsArgument,
    output: Annotated[Path | None, output_option("INPUT.xSCALE-SAMPLER-NOISE.mp4")] = None,
    scale: Annotated[int, typer.Option("--scale", help="2, 4 or 8.")] = 8,
    *,
    restore: RestoreOptions,
) -> int:
    return _restore(ctx, options, "sr", inputs, output, [], restore)


@command(
    help=(
        "Fill the masked region of every frame of videos, temporally consistent.\n\n"
        f"{_MANY}\n\n"
        "Masks for several inputs: --mask once for all (a fixed logo or watermark), --mask "
        "once per input in the inputs' order, or --mask FOLDER holding a mask named after each "
        "input (masks/a.mp4, masks/a.png or a frame folder masks/a/ for clips/a.mp4).\n\n"
        "Examples:\n\n"
        '  wdiff inpaint in.mp4 --mask mask.mp4 --prompt "a robot on a bench"\n\n'
        "  wdiff inpaint a.mp4 b.mp4 --mask logo.png -o out/\n\n"
        "  wdiff inpaint a.mp4 b.mp4 --mask a-mask.mp4 --mask b-mask.mp4 -o out/\n\n"
        "  wdiff inpaint clips/ --mask masks/ -o out/"
    ),
    renamed=_RENAMED,
)
def inpaint(
    ctx: typer.Context,
    options: GlobalOptions,
    inputs: InputsArgument,
    mask: Annotated[
        list[str],
        typer.Option(
            "--mask",
            help="Mask video, image or frame folder; white = fill. Several inputs: once for "
            "all, once per input, or a folder of masks named after the inputs.",
            show_default=False,
        ),
    ],
    output: Annotated[Path | None, output_option("INPUT.inpainted-SAMPLER-NOISE.mp4")] = None,
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
    preview: Annotated[
        bool,
        typer.Option(
            "--preview/--no-preview",
            help="Also write OUT.preview.mp4 beside the output: each frame's input with the "
            "hole tinted, beside the result, at the output's frame times.",
        ),
    ] = False,
    preview_output: Annotated[
        Path | None,
        typer.Option(
            "--preview-output",
            help="Write the preview here (.mp4, .mkv or .mov; implies --preview).",
            show_default=False,
        ),
    ] = None,
    *,
    restore: RestoreOptions,
) -> int:
    return _restore(ctx, options, "inpaint", inputs, output, mask, restore)


def _restore(
    ctx: typer.Context,
    options: GlobalOptions,
    task: str,
    inputs: list[str],
    output: Path | None,
    masks: list[str],
    restore: RestoreOptions,
) -> int:
    """One input as it always ran; several (or a folder of videos, or a launcher's processes)
    as a batch."""
    from wdiff.restore.batch import is_video_folder, pair_masks
    from wdiff.restore.processes import launched

    if len(inputs) > 1 or is_video_folder(Path(inputs[0])) or launched():
        return _restore_many(ctx, options, task, inputs, output, masks, restore)
    (mask,) = pair_masks(inputs, masks)
    if isinstance(mask, Exception):
        raise mask
    _restore_one(ctx, options, task, inputs[0], output, mask, restore)
    return 0


def _plan_options(ctx: typer.Context, options: GlobalOptions, restore: RestoreOptions) -> dict:
    """``plan_restore``'s keyword arguments from the command line."""
    return {
        "preset": restore.preset,
        "given": _given_settings(ctx),
        "seed": options.seed,
        "fps": restore.fps,
        "raft_weights": restore.raft_weights,
        "cache_dir": restore.cache_dir,
        "use_cache": not restore.no_cache,
        "resume": restore.resume,
        "overwrite": restore.overwrite,
        "command_line": COMMAND_LINE.get(),  # for the report
        "preview": ctx.params.get("preview_output") or bool(ctx.params.get("preview")),
    }


def _restore_one(
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

    job = plan_restore(task, input, output, mask=mask, **_plan_options(ctx, options, restore))
    if restore.print_config:
        typer.echo(job.config_yaml(), nl=False)
        return
    result = run_restore(job, options.torch_device(), feedback(options.quiet))
    if not options.quiet:
        error = result.report["mean_warping_error_previous"]
        consistency = f"; mean warping error {error:.3g}" if error is not None else ""  # a still
        preview = f"; preview {result.preview}" if result.preview else ""
        note(
            f"wrote {result.output} ({result.report['seconds_per_frame']} s/frame{consistency}); "
            f"report {result.report_path}{preview}"
        )
    if restore.as_json:
        document(run_summary(result))
    else:
        outputs(_written(result.output, result))


def _restore_many(
    ctx: typer.Context,
    options: GlobalOptions,
    task: str,
    inputs: list[str],
    output: Path | None,
    masks: list[str],
    restore: RestoreOptions,
) -> int:
    """Plan every input, run this process's share, and (main process) say what became of all;
    the exit code."""
    from wdiff.restore.batch import check_output_folder, make_output_folder, plan_batch, run_batch
    from wdiff.restore.processes import Processes

    folder = check_output_folder(output) if output is not None else None
    if ctx.params.get("preview_output") is not None:
        raise WdiffError(
            "--preview-output names one file; with several inputs give --preview (each "
            "OUT.preview.mp4 beside its output)"
        )
    plan = _plan_options(ctx, options, restore)
    entries = plan_batch(task, inputs, folder, masks, **plan)
    if restore.print_config:
        typer.echo("---\n".join(e.job.config_yaml() for e in entries if e.job), nl=False)
        return 0
    processes = Processes.start(cpu=options.device == "cpu")
    if folder is not None:
        make_output_folder(folder)
    device = processes.device
    if device is None or options.device not in ("auto", "cuda"):
        device = options.torch_device()
    talk = feedback(options.quiet) if processes.is_main else _worker(options.quiet, processes)
    mine = run_batch(entries, device, talk, processes.share(len(entries)))
    outcomes = sorted(processes.gather(mine), key=lambda outcome: outcome.index)
    processes.finish()
    if processes.is_main:
        _say_outcomes(outcomes, options, restore.as_json)
    if any(outcome.internal for outcome in outcomes):
        return 1
    return 2 if any(outcome.status == "failed" for outcome in outcomes) else 0


def _worker(quiet: bool, processes) -> Feedback:
    """Processes other than the main one: their warnings only, naming the process."""
    from wdiff.feedback import SILENT, Feedback

    if quiet:
        return SILENT
    return Feedback(warn=lambda message: warn(f"process {processes.index}: {message}"))


def _say_outcomes(outcomes: list[Outcome], options: GlobalOptions, as_json: bool) -> None:
    """The table on stderr, a line per failed input, and the outputs (or JSON) on stdout."""
    if not options.quiet:
        _summary_table(outcomes)
    for outcome in outcomes:
        if outcome.status != "failed":
            continue
        if options.debug and outcome.trace:
            sys.stderr.write(outcome.trace)
        reason = outcome.reason or ""
        named = reason if reason.startswith(outcome.source) else f"{outcome.source}: {reason}"
        typer.echo(f"wdiff: error: {named}", err=True)
    for outcome in outcomes:
        if as_json:
            document(_outcome_json(outcome))
        elif outcome.status != "failed":
            outputs(_written(outcome.output, outcome.result))


def _written(output: Path, result: RestoreResult | None) -> list[Path]:
    """An input's paths for stdout: the output, then its preview (when one was written)."""
    preview = result.preview if result is not None else None
    return [output, *([preview] if preview is not None else [])]


def _outcome_json(outcome: Outcome) -> dict:
    """``--json`` of one input: ``source`` and ``status``, then the single input's object (done,
    skipped) or the ``output`` and ``error`` (failed)."""
    fields = {"source": outcome.source, "status": outcome.status}
    if outcome.result is not None:
        return fields | run_summary(outcome.result)
    output = str(outcome.output) if outcome.output is not None else None
    return fields | {"output": output, "error": outcome.reason}


def _summary_table(outcomes: list[Outcome]) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = {
        status: sum(outcome.status == status for outcome in outcomes)
        for status in ("done", "skipped", "failed")
    }
    table = Table(caption=", ".join(f"{n} {status}" for status, n in counts.items()))
    for column in ("input", "output", "frames", "seconds", "status"):
        table.add_column(
            column, overflow="fold", justify="right" if column in ("frames", "seconds") else "left"
        )
    for outcome in outcomes:
        status = {"skipped": "skipped (complete)"}.get(outcome.status, outcome.status)
        table.add_row(
            outcome.source,
            str(outcome.output) if outcome.output is not None else "-",
            str(outcome.frames) if outcome.frames is not None else "-",
            f"{outcome.seconds:.1f}" if outcome.seconds is not None else "-",
            status,
        )
    Console(stderr=True, highlight=False).print(table)


def run_summary(result: RestoreResult) -> dict:
    """``--json``: the run in one object, the report without its per-frame rows and settings."""
    from wdiff.restore.report import report_paths

    report = result.report
    errors = {key: value for key, value in report.items() if key.startswith("mean_")}
    return {
        "output": str(result.output),
        "report": str(result.report_path),
        "frames_csv": str(report_paths(result.output)[1]),
        "preview": str(result.preview) if result.preview is not None else None,
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
