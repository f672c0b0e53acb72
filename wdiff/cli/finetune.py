"""``wdiff finetune``: train a conditional diffusion model (``wdiff.training``); the model's
path (then the run's log and loss plot) on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from wdiff.cli.app import GlobalOptions, Renamed, command
from wdiff.cli.options import positive
from wdiff.cli.printing import note, outputs
from wdiff.errors import Interrupted, WdiffError


@command(
    help=(
        "Train a conditional diffusion model with GP or white noise (EDM loss, Accelerate).\n\n"
        "Examples:\n\n"
        "  wdiff finetune --task sr --noise gp --data samples --out runs/sr-gp "
        "--train-steps 4000\n\n"
        "  wdiff finetune --task inpaint --data frames/ --out runs/inp --resume\n\n"
        "  wdiff finetune --task sr --init builtin:sr --data frames/ --out runs/sr-mine "
        "--train-steps 1000 --top-share 0.25\n\n"
        "  wdiff finetune --task sr --init builtin:sr --first-level runs/sr-mine "
        "--data frames/ --out runs/sr-first --train-steps 2000\n\n"
        "  wdiff finetune --task sr --init builtin:sr --first-level builtin:sr --first-layers 3 "
        "--data frames/ --out runs/sr-deeper --augment dihedral\n\n"
        "  accelerate launch -m wdiff finetune --task sr --out runs/sr --batch-size 64"
    ),
    renamed=(
        Renamed(
            "--steps",
            "--train-steps",
            "optimiser steps; --steps is the sampling steps of upscale and inpaint",
        ),
    ),
)
def finetune(
    options: GlobalOptions,
    out: Annotated[Path, typer.Option("--out", help="Run folder: model, log, loss plot.")],
    task: Annotated[str, typer.Option("--task", help="sr (scales 2, 4, 8) or inpaint.")] = "sr",
    noise: Annotated[str, typer.Option("--noise", help="gp or white.")] = "gp",
    data: Annotated[
        str, typer.Option("--data", help="samples (media shipped in packages) or a folder.")
    ] = "samples",
    arch: Annotated[
        str,
        typer.Option(
            "--arch",
            help="builtin-small, builtin-deep (one level more), builtin-tiny, or a local SDXL "
            "folder.",
        ),
    ] = "builtin-small",
    train_steps: Annotated[
        int, typer.Option("--train-steps", help="Optimiser steps in all.", min=1)
    ] = 4000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step.", min=1)] = 16,
    crop: Annotated[int, typer.Option("--crop", help="Crop size in pixels.", min=16)] = 64,
    augment: Annotated[
        str,
        typer.Option(
            "--augment",
            help="flip (random horizontal flips) or dihedral (flips and quarter turns: all "
            "eight symmetries of the square).",
        ),
    ] = "flip",
    lr: Annotated[
        float,
        typer.Option("--lr", help="AdamW learning rate (SDXL: 5e-6).", callback=positive),
    ] = 5e-4,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", help="Steps between checkpoints.", min=1)
    ] = 500,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.")] = False,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Start from this built-in model's weights (builtin:sr, builtin:inpaint, a run "
            "folder or model file) and its architecture, instead of random ones.",
        ),
    ] = None,
    top_share: Annotated[
        float | None,
        typer.Option(
            "--top-share",
            help="Built-in models: share of training items at the highest noise level, where "
            "sampling starts and a one-step upscale estimates the posterior mean (default 0).",
            min=0.0,
            max=1.0,
        ),
    ] = None,
    first_level: Annotated[
        str | None,
        typer.Option(
            "--first-level",
            help="Built-in models: train a second network for the highest noise level alone "
            "(where sampling starts; all that a one-step upscale uses), starting from this "
            "model's weights (or random weights of this --arch), and write it beside --init's "
            "network, which is kept as it is and denoises every other level.",
        ),
    ] = None,
    first_layers: Annotated[
        int | None,
        typer.Option(
            "--first-layers",
            help="Built-in models, with --first-level: give the first-level network this many "
            "ResNet layers per block. Layers it lacks are added as identities, so training "
            "goes on from what it computes (a deeper network without starting again).",
        ),
    ] = None,
) -> None:
    from wdiff.progress import progress_bar
    from wdiff.training import TrainSettings
    from wdiff.training import finetune as run_finetune

    if crop % 8:
        raise WdiffError(f"--crop {crop}: use a multiple of 8 (SR scales go up to 8)")
    settings = TrainSettings(
        task=task,
        noise=noise,
        data=data,
        out=str(out),
        arch=arch,
        steps=train_steps,
        batch_size=batch_size,
        crop=crop,
        augment=augment,
        lr=lr,
        seed=options.seed,
        checkpoint_every=checkpoint_every,
        resume=resume,
        init=init,
        top_share=top_share,
        first_level=first_level,
        first_layers=first_layers,
        cpu=options.torch_device().type == "cpu",
    )
    with progress_bar(f"finetune {task} ({noise} noise)", train_steps, options.quiet) as advance:
        last = [0]

        def report(step: int, total: int, loss: float) -> None:
            advance(step - last[0])
            last[0] = step

        try:
            summary = run_finetune(settings, report)
        except KeyboardInterrupt:
            raise _interrupted(out, checkpoint_every) from None
    if summary:  # the main process only, under accelerate
        result = out if Path(arch).is_dir() else out / "model.safetensors"
        if not options.quiet:
            note(
                f"{result}: {summary['steps_this_run']} steps in "
                f"{summary['seconds_this_run']} s on {summary['device']}, "
                f"{_processes(summary.get('processes', 1))}"
            )
        written = [out / "log.jsonl", out / "loss.png"]
        outputs([result, *(path for path in written if path.is_file())])


def _processes(count: int) -> str:
    """The closing line's process count: ``accelerate launch`` may start fewer than asked."""
    return "1 process" if count == 1 else f"{count} processes (accelerate)"


def _interrupted(out: Path, checkpoint_every: int) -> Interrupted:
    """Ctrl-C: what the run folder keeps (the last checkpoint) and how to continue."""
    state = out / "checkpoint" / "state.json"
    if not state.is_file():
        return Interrupted(f"no checkpoint yet in {out} (one every {checkpoint_every} steps)")
    step = json.loads(state.read_text())["step"]
    return Interrupted(
        f"the checkpoint at step {step} is kept in {state.parent}; rerun the same "
        "command with --resume to continue"
    )
