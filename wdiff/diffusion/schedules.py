"""Noise-level schedules: ``steps + 1`` sigmas, float32, descending, ending at 0 (diffusers)."""

from __future__ import annotations

import torch


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """Karras et al. (EDM) schedule, as diffusers' ``EDMEulerScheduler`` lays it out."""
    from diffusers import EDMEulerScheduler

    scheduler = EDMEulerScheduler(
        sigma_min=sigma_min, sigma_max=sigma_max, sigma_schedule="karras", rho=rho
    )
    scheduler.set_timesteps(steps)
    return scheduler.sigmas.to(torch.float32).clone()


def discrete_sigmas(scheduler, steps: int) -> torch.Tensor:
    """A model's own discrete training sigmas (e.g. SDXL's ``EulerDiscreteScheduler``), spaced
    as its scheduler config says; ``scheduler`` is a diffusers scheduler with ``sigmas``."""
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas.to(torch.float32).clone()
    if sigmas[-1] != 0:
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    return sigmas


def training_sigmas(scheduler) -> torch.Tensor:
    """All sigmas a discrete model was trained at, ascending with timestep, float32 ``(T,)``."""
    alphas = scheduler.alphas_cumprod.to(torch.float64)
    return ((1 - alphas) / alphas).sqrt().to(torch.float32)
