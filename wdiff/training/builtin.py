"""Training the built-in pixel models (``--arch builtin-*``) with the EDM loss.

Per step: crops ``y`` in [-1, 1]; the observation from the task (SR: area-downsampled by a scale
drawn from 2, 4, 8, then bicubic-upsampled; inpainting: a random free-form/box mask); a noise
level ``ln sigma ~ N(p_mean, p_std^2)`` (the model config's; -1.2 and 1.2 by default), or
sigma_max for a share ``p_top`` of the items (``--top-share``; 0 by default; all of them for
a first-level network, ``--first-level``, which trains beside the ``--init`` model's network and
leaves it as it is); noise GP or white; the loss
``(sigma^2 + sd^2) / (sigma sd)^2 * |D(y + sigma n, sigma, cond) - y|^2`` (Karras et al. 2022).
AdamW with a 200-step warm-up; the EMA of the weights is what is saved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from wdiff.errors import WdiffError
from wdiff.training.examples import training_example, training_noise
from wdiff.training.folder import (
    check_out_folder,
    check_run_folder,
    plot_losses,
    resume_checkpoint,
    run_folder,
)
from wdiff.training.loop import Report, run_summary, train_steps
from wdiff.training.settings import TrainSettings
from wdiff.training.writes import write_atomic

WARM_UP = 200  # steps


def edm_loss(
    net: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    cond: torch.Tensor,
    noise: torch.Tensor,
    gen: torch.Generator,
    sigma_data: float = 0.5,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    p_top: float = 0.0,
    sigma_max: float = 80.0,
) -> torch.Tensor:
    """The EDM loss of ``net(x, sigma, cond)`` on ``clean`` (B, C, H, W) with ``noise`` of the
    same shape; one sigma per item, drawn from ``gen`` (on the CPU): log-normal, or
    ``sigma_max`` for a share ``p_top`` of the items."""
    sd = sigma_data
    log_sigma = p_mean + p_std * torch.randn(clean.shape[0], generator=gen)
    if p_top > 0:  # no extra draw otherwise, so p_top = 0 trains as before
        top = torch.rand(clean.shape[0], generator=gen) < p_top
        log_sigma = torch.where(top, torch.tensor(sigma_max).log(), log_sigma)
    sigma = log_sigma.exp().to(clean.device)
    scale = sigma.view(-1, 1, 1, 1)
    denoised = net(clean + scale * noise.to(clean.device), sigma, cond)
    weight = (scale**2 + sd**2) / (scale * sd) ** 2
    return (weight * (denoised - clean) ** 2).mean()


def initial_net(settings: TrainSettings, name: str, option: str = "--init"):
    """The model ``name`` (given as ``option``: ``builtin:TASK``, a run folder or a model file),
    to train on from its weights: its architecture, preconditioning and noise-level draws, with
    ``settings.noise``."""
    from dataclasses import replace

    from wdiff.models.builtin import BuiltinNet, model_file

    path = model_file(name)
    if not path.is_file():
        raise WdiffError(
            f"{option} {name}: no such model; give builtin:sr, builtin:inpaint, a "
            "`wdiff finetune` run folder or its model.safetensors"
        )
    net, _ = BuiltinNet.load(path)
    if net.config.task != settings.task:
        raise WdiffError(
            f"{option} {name}: trained for {net.config.task}, not --task {settings.task}"
        )
    net.config = replace(net.config, noise=settings.noise, p_top=0.0)  # --top-share sets it
    return net.train().requires_grad_(True)


def with_first_level(net, settings: TrainSettings):
    """``net`` (kept as it is) with a first-level network to train beside it, initialised from
    the model ``settings.first_level`` names (its own first-level network if it has one), or
    random weights of the architecture it names (with ``net``'s preconditioning); deepened to
    ``settings.first_layers`` layers per block when that is set."""
    from dataclasses import replace

    from wdiff.models.builtin import ARCHITECTURES, BuiltinConfig, BuiltinNet
    from wdiff.models.deepen import deepen

    name = settings.first_level
    if name in ARCHITECTURES:
        shape = ("block_out_channels", "layers_per_block", "norm_num_groups")
        default = {key: getattr(BuiltinConfig(), key) for key in shape}
        first = BuiltinNet(replace(net.config, **(default | ARCHITECTURES[name])))
    else:
        source = initial_net(settings, name, "--first-level")
        first = source.first if source.first is not None else source
        first.first = None
    if settings.first_layers is not None:
        try:
            first = deepen(first, settings.first_layers)
        except WdiffError as error:  # deepen's own check, named by the option
            raise WdiffError(f"--first-layers {settings.first_layers}: {error}") from error
    fixed = ("residual", "sigma_data", "sigma_max", "patch")
    if any(getattr(first.config, key) != getattr(net.config, key) for key in fixed):
        raise WdiffError(
            f"--first-level {settings.first_level}: its {', '.join(fixed)} differ from --init "
            f"{settings.init}'s; give a model of the same kind"
        )
    first.config = replace(first.config, noise=settings.noise, p_top=1.0)
    net.requires_grad_(False)
    net.first = first.train().requires_grad_(True)
    return net


def finetune_builtin(settings: TrainSettings, report: Report | None = None) -> dict:
    """Train ``settings.arch`` (a name in ``models.builtin.ARCHITECTURES``; settings already
    checked) and write ``out/model.safetensors`` (EMA weights, the settings and the summary in
    its metadata), ``out/log.jsonl``, ``out/loss.png`` and ``out/checkpoint``."""
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    from wdiff.datasets import training_images
    from wdiff.models.builtin import ARCHITECTURES, TASK_DEFAULTS, BuiltinConfig, BuiltinNet

    out = Path(settings.out)
    check_out_folder(out)
    checkpoint = check_run_folder(out, settings.resume, (out / "model.safetensors").exists())
    images = training_images(settings.data, settings.crop)

    torch.manual_seed(settings.seed)
    if settings.init:
        net = initial_net(settings, settings.init)
        config = net.config
        if settings.first_level:
            net = with_first_level(net, settings)
    else:
        config = BuiltinConfig(
            task=settings.task,
            noise=settings.noise,
            **TASK_DEFAULTS[settings.task],
            **ARCHITECTURES[settings.arch],
        )
        net = BuiltinNet(config)
    if settings.top_share is not None:
        config.p_top = settings.top_share
    p_top = 1.0 if settings.first_level else config.p_top
    ema = EMAModel(net.parameters(), decay=settings.ema_decay)
    trained = [parameter for parameter in net.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=settings.lr, weight_decay=0.0)
    accelerator = Accelerator(cpu=settings.cpu)
    net, optimizer = accelerator.prepare(net, optimizer)
    accelerator.register_for_checkpointing(ema)
    start = resume_checkpoint(accelerator, checkpoint) if settings.resume else 0
    ema.to(accelerator.device)

    def loss_of(crops: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        cond = training_example(settings.task, crops, gen)
        noise = training_noise(settings.noise, crops.shape, gen)
        crops, cond = crops.to(accelerator.device), cond.to(accelerator.device)
        return edm_loss(
            net,
            crops,
            cond,
            noise,
            gen,
            config.sigma_data,
            config.p_mean,
            config.p_std,
            p_top,
            config.sigma_max,
        )

    def after_step() -> None:
        ema.step(accelerator.unwrap_model(net).parameters())

    with run_folder(out):
        began, seen = train_steps(
            accelerator,
            settings,
            images,
            start,
            net,
            optimizer,
            loss_of,
            report,
            warm_up=WARM_UP,
            after_step=after_step,
        )
        summary = {}
        if accelerator.is_main_process:
            model = accelerator.unwrap_model(net)
            ema.copy_to(model.parameters())
            summary = run_summary(accelerator, settings, began, seen, len(images))
            metadata = {"settings": json.dumps(asdict(settings))} | {"summary": json.dumps(summary)}
            write_atomic(out / "model.safetensors", lambda path: model.save(path, metadata))
            plot_losses(out)
    return summary
