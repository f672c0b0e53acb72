"""Batch-consistent sampling (Kwon & Ye 2024, "Solving Video Inverse Problems Using Image
Diffusion Models"), the baseline beside Warped Diffusion.

A window of frames is one batch. Every frame starts from the same noise; after each denoising,
a few conjugate-gradient steps pull the denoised batch toward the data (linear tasks); the
re-noising to the next level uses the predicted noise direction plus a share ``eta`` of fresh
noise that is the same for every frame (DDIM's eta, in the sigma-parametrisation):
``x_next = x0_dc + sigma_next * (sqrt(1 - eta^2) eps_hat + eta z)``, ``eps_hat = (x - x0) / sigma``.
Windows are independent (and start from the same noise), so memory is bounded by the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from wdiff.models.base import Denoiser, init_noise_sigma
from wdiff.noise.base import white_noise
from wdiff.tasks import LinearOperator, cg_least_squares


@dataclass
class BatchConsistentSettings:
    """``window``: frames per batch; ``cg_steps``: CG iterations per step; ``eta``: share of
    shared fresh noise when re-noising (0 = deterministic)."""

    window: int = 8
    cg_steps: int = 5
    eta: float = 0.15


@dataclass
class Window:
    """One batch of consecutive frames: the denoiser's condition for the batch, the operator
    and the observations (``None`` for no data consistency)."""

    cond: Any
    frames: int
    operator: LinearOperator | None = None
    observation: torch.Tensor | None = None


def sample_window(
    denoiser: Denoiser,
    window: Window,
    shape: tuple[int, int, int],
    sigmas: torch.Tensor,
    seed: int,
    settings: BatchConsistentSettings,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Sample ``window.frames`` frames of working-space ``shape`` = (C, h, w) -> float32
    ``(frames, C, h, w)``. With an operator, the output meets the data after ``cg_steps``."""
    sigmas = sigmas.to(device, torch.float32)
    size = (1, *shape)
    x = white_noise(size, seed, "batch-consistent", "init", device=device)
    x = (x * init_noise_sigma(denoiser, sigmas)).expand(window.frames, *shape).contiguous()
    keep = math.sqrt(max(1.0 - settings.eta**2, 0.0))
    for step in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[step], sigmas[step + 1]
        with torch.no_grad():
            denoised = denoiser(x, sigma, window.cond).float()
        consistent = _data_consistency(denoiser, window, denoised, settings.cg_steps)
        if sigma_next == 0:
            x = consistent
            break
        direction = (x - denoised) / sigma
        shared = white_noise(size, seed, "batch-consistent", step, device=device)
        x = consistent + sigma_next * (keep * direction + settings.eta * shared)
    return x


def _data_consistency(
    denoiser: Denoiser, window: Window, denoised: torch.Tensor, steps: int
) -> torch.Tensor:
    if window.operator is None or steps == 0:
        return denoised
    if denoiser.space == "pixel":
        return cg_least_squares(window.operator, denoised, window.observation, steps)
    with torch.no_grad():
        pixels = denoiser.decode(denoised).float()
        pixels = cg_least_squares(window.operator, pixels, window.observation, steps)
        return denoiser.encode(pixels).float()


def sample_batch_consistent(
    denoiser: Denoiser,
    windows: Iterable[Window],
    shape: tuple[int, int, int],
    sigmas: torch.Tensor,
    seed: int,
    settings: BatchConsistentSettings | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """Yield the frames of each window ``(1, C, h, w)`` in order."""
    settings = settings or BatchConsistentSettings()
    for window in windows:
        frames = sample_window(denoiser, window, shape, sigmas, seed, settings, device)
        yield from frames.split(1)
