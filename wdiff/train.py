"""``wdiff finetune``: conditional training of a denoiser with GP or white noise (EDM loss),
under Accelerate so the same code runs on one CPU or under ``accelerate launch`` on many GPUs.

Per step: crops ``y`` in [-1, 1]; the observation from the task (SR: area-downsampled by a scale
drawn from 2, 4, 8, then bicubic-upsampled; inpainting: a random free-form/box mask); a noise
level ``ln sigma ~ N(p_mean, p_std^2)`` (the model config's; -1.2 and 1.2 by default); noise GP
or white; the loss
``(sigma^2 + sd^2) / (sigma sd)^2 * |D(y + sigma n, sigma, cond) - y|^2`` (Karras et al. 2022).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wdiff.errors import WdiffError

SR_SCALES = (2, 4, 8)


@dataclass
class TrainSettings:
    task: str = "sr"
    noise: str = "gp"
    data: str = "samples"
    out: str = "runs/sr-gp"
    arch: str = "builtin-small"
    steps: int = 4000
    batch_size: int = 16
    crop: int = 64
    lr: float = 5e-4
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    resume: bool = False
    cpu: bool = False


def training_example(task: str, crops: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The condition for a batch of crops ``(B, 3, S, S)``: SR with a random scale per batch
    (bicubic-upsampled area downsampling) or inpainting with random masks."""
    from wdiff.datasets import random_masks
    from wdiff.tasks import Inpainting, SuperResolution

    if task == "sr":
        scale = SR_SCALES[int(torch.randint(len(SR_SCALES), (1,), generator=gen))]
        sr = SuperResolution(scale)
        return sr.upsample(sr.degrade(crops))
    masks = random_masks(crops.shape[0], crops.shape[-1], gen)
    return torch.cat([Inpainting.degrade(crops, masks), masks.float() * 2 - 1], dim=1)


def training_noise(kind: str, shape, gen: torch.Generator) -> torch.Tensor:
    from wdiff.noise.gp import gp_noise

    if kind == "gp":
        return gp_noise(shape, gen)
    return torch.randn(shape, generator=gen)


def edm_loss(
    net,
    clean: torch.Tensor,
    cond: torch.Tensor,
    noise: torch.Tensor,
    gen: torch.Generator,
    sigma_data: float = 0.5,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> torch.Tensor:
    sd = sigma_data
    log_sigma = p_mean + p_std * torch.randn(clean.shape[0], generator=gen)
    sigma = log_sigma.exp().to(clean.device)
    scale = sigma.view(-1, 1, 1, 1)
    denoised = net(clean + scale * noise.to(clean.device), sigma, cond)
    weight = (scale**2 + sd**2) / (scale * sd) ** 2
    return (weight * (denoised - clean) ** 2).mean()


def finetune(settings: TrainSettings, report=None) -> dict:
    """Train and write ``out/model.safetensors`` (EMA weights), ``out/log.jsonl``,
    ``out/loss.png`` and checkpoints under ``out/checkpoint``. ``report(step, total, loss)`` is
    called at every log interval.

    Everything that can be checked (the options, ``--out``, the run folder, the data) is
    checked before ``out`` is created; a run that fails before its first checkpoint removes the
    folders it created."""
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    from wdiff.datasets import batches, training_images
    from wdiff.models.builtin import ARCHITECTURES, TASK_DEFAULTS, BuiltinConfig, BuiltinNet

    check_settings(settings)
    if settings.arch not in ARCHITECTURES:
        if Path(settings.arch).is_dir():
            from wdiff.train_sdxl import finetune_sdxl

            return finetune_sdxl(settings, report)
        raise WdiffError(
            f"--arch {settings.arch}: use one of {', '.join(ARCHITECTURES)} or a local diffusers "
            "SDXL folder"
        )
    out = Path(settings.out)
    check_out_folder(out)
    checkpoint = check_run_folder(out, settings.resume, (out / "model.safetensors").exists())
    images = training_images(settings.data, settings.crop)

    torch.manual_seed(settings.seed)
    config = BuiltinConfig(
        task=settings.task,
        noise=settings.noise,
        **TASK_DEFAULTS[settings.task],
        **ARCHITECTURES[settings.arch],
    )
    net = BuiltinNet(config)
    ema = EMAModel(net.parameters(), decay=settings.ema_decay)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=0.0)
    accelerator = Accelerator(cpu=settings.cpu)
    net, optimizer = accelerator.prepare(net, optimizer)
    accelerator.register_for_checkpointing(ema)
    start = resume_checkpoint(accelerator, checkpoint) if settings.resume else 0
    ema.to(accelerator.device)

    with run_folder(out):
        log_path = out / "log.jsonl"
        if accelerator.is_main_process:
            trim_log(log_path, start)
        began, losses, seen = time.time(), [], 0
        rank_seed = settings.seed * 1000 + accelerator.process_index
        crops_of = batches(images, settings.crop, settings.batch_size, rank_seed, start)
        for step, crops, gen in crops_of:
            if step >= settings.steps:
                break
            cond = training_example(settings.task, crops, gen)
            noise = training_noise(settings.noise, crops.shape, gen)
            crops, cond = crops.to(accelerator.device), cond.to(accelerator.device)
            loss = edm_loss(
                net, crops, cond, noise, gen, config.sigma_data, config.p_mean, config.p_std
            )
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(net.parameters(), 1.0)
            lr = settings.lr * min(1.0, (step + 1) / 200)  # warm-up
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad()
            ema.step(accelerator.unwrap_model(net).parameters())
            losses.append(float(loss.detach()))
            seen += 1
            if end_of_step(accelerator, settings, step + 1, losses, lr, began, report):
                losses = []
        accelerator.wait_for_everyone()
        summary = {}
        if accelerator.is_main_process:
            model = accelerator.unwrap_model(net)
            ema.copy_to(model.parameters())
            summary = run_summary(accelerator, settings, began, seen, len(images))
            metadata = {"settings": json.dumps(asdict(settings))} | {"summary": json.dumps(summary)}
            write_atomic(out / "model.safetensors", lambda path: model.save(path, metadata))
            plot_losses(log_path, out / "loss.png")
    return summary


def check_settings(settings: TrainSettings) -> None:
    """Refuse settings no run can use (the CLI checks most of them already; this covers
    callers of :func:`finetune` from Python)."""
    if settings.task not in ("sr", "inpaint"):
        raise WdiffError(f"--task {settings.task}: use sr or inpaint")
    if settings.noise not in ("gp", "white"):
        raise WdiffError(f"--noise {settings.noise}: use gp or white")
    if not (math.isfinite(settings.lr) and settings.lr > 0):
        raise WdiffError(f"--lr {settings.lr}: use a learning rate above 0 (such as 5e-4)")
    for option, value in (
        ("--steps", settings.steps),
        ("--batch-size", settings.batch_size),
        ("--checkpoint-every", settings.checkpoint_every),
    ):
        if value < 1:
            raise WdiffError(f"{option} {value}: use 1 or more")
    if settings.crop < 16 or settings.crop % 8:
        raise WdiffError(f"--crop {settings.crop}: use a multiple of 8, 16 or more")


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` that is not a folder or that cannot be created or written."""
    if os.path.lexists(out) and not out.is_dir():
        kind = "is a file" if out.is_file() else "is not a folder"
        raise WdiffError(f"{out}: {kind}; choose a folder for --out")
    existing = out
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        raise WdiffError(f"{out}: {existing} is a file; choose a folder for --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "here" if existing == out else f"in {existing}"
        raise WdiffError(f"{out}: cannot write {where} (read-only); choose another --out")


@contextlib.contextmanager
def run_folder(out: Path) -> Iterator[Path]:
    """Create the run folder ``out`` (and its missing parents) for the body; when the body
    fails before a checkpoint was saved, remove the folders this created."""
    created = None
    for folder in (out, *out.parents):
        if os.path.lexists(folder):
            break
        created = folder
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    state = out / "checkpoint" / "state.json"
    try:
        yield out
    except BaseException as error:
        if not state.is_file():
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        if isinstance(error, WdiffError):
            step = json.loads(state.read_text())["step"]
            raise WdiffError(
                f"{error} (the checkpoint at step {step} is kept: add --resume to continue)"
            ) from error
        raise


_WRITE_FAILURES = ("no space left", "os error", "i/o error", "file write failed", "quota")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write of ``path`` (disk full, read-only, ...) into a WdiffError naming it.
    torch.save and safetensors wrap the OSError in their own exceptions: those count when
    their message says so or when a small probe write beside ``path`` fails too."""
    try:
        yield
    except WdiffError:
        raise
    except OSError as error:
        raise WdiffError(_cannot_write(path, error.strerror or str(error))) from error
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        hinted = any(word in message.lower() for word in _WRITE_FAILURES)
        reason = message if hinted else _probe_write(Path(path).parent)
        if reason is None:
            raise
        raise WdiffError(_cannot_write(path, reason)) from error


def _cannot_write(path: Path, reason: str) -> str:
    return f"{path}: cannot write ({reason}); free space or choose another --out"


def _probe_write(folder: Path) -> str | None:
    """Why a 64 KiB file cannot be written in ``folder``, or None when it can."""
    if not folder.is_dir():
        return None
    probe = folder / f".wdiff-probe-{os.getpid()}"
    try:
        with probe.open("wb") as handle:
            handle.write(bytes(65536))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return error.strerror or str(error)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def write_atomic(target: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` beside ``target``, then rename it onto ``target``: a failed write
    leaves ``target`` as it was and raises WdiffError naming it."""
    from wdiff.outputs import atomic_output

    # the inner writing() sees the failure while the temporary still holds its disk space
    with writing(target), atomic_output(target) as temporary, writing(target):
        write(temporary)


def end_of_step(accelerator, settings, done: int, losses, lr, began, report) -> bool:
    """After optimiser step ``done``: at log intervals append the mean of ``losses`` to
    ``OUT/log.jsonl`` and call ``report`` (returns True: the caller starts a new window); at
    checkpoint intervals save ``OUT/checkpoint``."""
    logged = False
    if (done % settings.log_every == 0 or done == settings.steps) and (accelerator.is_main_process):
        row = {"step": done, "loss": sum(losses) / len(losses), "lr": lr}
        row["seconds"] = round(time.time() - began, 1)
        log_path = Path(settings.out) / "log.jsonl"
        with writing(log_path), log_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        if report:
            report(done, settings.steps, row["loss"])
        logged = True
    if done % settings.checkpoint_every == 0 or done == settings.steps:
        _checkpoint(accelerator, Path(settings.out) / "checkpoint", done, settings)
    return logged


def run_summary(accelerator, settings, began: float, steps_run: int, images: int) -> dict:
    return {
        "steps": settings.steps,
        "seconds_this_run": round(time.time() - began, 1),
        "steps_this_run": steps_run,
        "device": str(accelerator.device),
        "processes": accelerator.num_processes,
        "images": images,
    }


def check_run_folder(out: Path, resume: bool, trained: bool) -> Path:
    """The checkpoint folder of run folder ``out``, after refusing what would lose work: a
    fresh run over a trained model (``trained``) or an interrupted run's checkpoint, or
    ``--resume`` without a checkpoint."""
    checkpoint = out / "checkpoint"
    saved = (checkpoint / "state.json").is_file()
    if resume and not saved:
        raise WdiffError(f"{checkpoint}: no checkpoint to resume; drop --resume to start afresh")
    if not resume and trained:
        raise WdiffError(f"{out}: holds a trained model; pick another --out or add --resume")
    if not resume and saved:
        raise WdiffError(
            f"{out}: holds an interrupted run's checkpoint; add --resume to continue it or pick "
            "another --out"
        )
    return checkpoint


def trim_log(log_path: Path, start: int) -> None:
    """Keep the rows of ``log.jsonl`` up to step ``start`` (a resumed run logs the rest again;
    a fresh one, ``start`` 0, begins an empty log)."""
    if not log_path.is_file():
        return
    rows = [line for line in log_path.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line)["step"] <= start]
    if len(kept) != len(rows):
        with writing(log_path):
            log_path.write_text("".join(line + "\n" for line in kept))


def resume_checkpoint(accelerator, folder: Path) -> int:
    """Load the state ``_checkpoint`` saved in ``folder``; the step it was saved at."""
    accelerator.load_state(str(folder))
    return json.loads((folder / "state.json").read_text())["step"]


def _checkpoint(accelerator, folder: Path, step: int, settings: TrainSettings) -> None:
    """Save the training state in ``folder`` as a whole: written into a hidden sibling first and
    swapped in once complete, so a failed save (a full disk) keeps the previous checkpoint."""
    staging = folder.with_name(f".{folder.name}.partial")
    old = folder.with_name(f".{folder.name}.old")
    try:
        with writing(folder):
            if accelerator.is_main_process:
                _remove(staging)
            accelerator.wait_for_everyone()
            accelerator.save_state(str(staging))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                (staging / "state.json").write_text(json.dumps({"step": step} | asdict(settings)))
                _remove(old)
                if folder.exists():
                    os.replace(folder, old)
                os.replace(staging, folder)
                _remove(old)
    except BaseException:
        if accelerator.is_main_process:
            _remove(staging)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def plot_losses(log_path: Path, png: Path) -> None:
    """The loss curve (log scale) from ``log.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not log_path.is_file():
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    axes.set_xlabel("step")
    axes.set_ylabel("EDM loss")
    axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    try:
        write_atomic(png, lambda path: figure.savefig(path, dpi=100))
    finally:
        plt.close(figure)
