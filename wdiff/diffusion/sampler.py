"""The probability-flow ODE sampler for one frame: Euler (eq. 7 of Warped Diffusion, with the
sign of Karras et al.) or Heun, with an optional guidance hook between steps.

``x = x0 + sigma * n``; the ODE is ``dx/dsigma = (x - D(x, sigma)) / sigma``, so a step from
``sigma`` to ``sigma_next < sigma`` moves ``x`` toward the prediction ``D``. This holds for any
noise covariance (white or GP), since D is the posterior mean under that noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from wdiff.models.base import Denoiser, init_noise_sigma

SOLVERS = ("euler", "heun")


class StepGuide(Protocol):
    """Guidance applied after each ODE step (see ``guidance.SelfGuide``); ``last_error`` is the
    loss of its latest ``gradient`` call, for reports."""

    last_error: float

    def active(self, step: int) -> bool: ...

    def needs_graph(self) -> bool:
        """True when the gradient flows through the network (x must require grad)."""

    def gradient(
        self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, step: int
    ) -> torch.Tensor:
        """The correction subtracted from the next x, shaped like ``x``."""


@dataclass
class FrameResult:
    """One sampled frame: ``x0`` in the working space, float32 ``(B, C, h, w)``; the network's
    prediction at every step, detached, in the model's dtype; guidance loss per guided step."""

    x0: torch.Tensor
    predictions: list[torch.Tensor]
    guidance_errors: list[float] = field(default_factory=list)


def euler_step(
    x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """One Euler step of the PF-ODE: ``x + (sigma_next - sigma) / sigma * (x - denoised)``."""
    return x + (sigma_next - sigma) / sigma * (x - denoised)


def heun_step(
    x: torch.Tensor,
    x_euler: torch.Tensor,
    denoised: torch.Tensor,
    denoised_next: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
) -> torch.Tensor:
    """Heun's correction: the mean of the slopes at ``sigma`` and at the Euler point."""
    slope = (x - denoised) / sigma
    slope_next = (x_euler - denoised_next) / sigma_next
    return x + (sigma_next - sigma) * (slope + slope_next) / 2


def sample_frame(
    denoiser: Denoiser,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    cond: Any,
    solver: str = "euler",
    guide: StepGuide | None = None,
    keep_predictions: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> FrameResult:
    """Sample one frame from ``noise`` (unit-scale, ``(B, C, h, w)``) along ``sigmas``.

    ``x = noise * models.base.init_noise_sigma`` (``sigmas[0]`` unless the model has its own);
    each step evaluates ``h = D(x, sigma_i, cond)`` (with a graph only when ``guide`` needs it),
    takes the ODE step, then subtracts ``guide.gradient``;
    ``on_step(steps_done)`` is called after each step (progress display).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r}: use one of {SOLVERS}")
    sigmas = sigmas.to(noise.device, torch.float32)
    x = noise.to(torch.float32) * init_noise_sigma(denoiser, sigmas)
    predictions: list[torch.Tensor] = []
    errors: list[float] = []
    for step in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[step], sigmas[step + 1]
        guided = guide is not None and guide.active(step)
        with_graph = guided and guide.needs_graph()
        x_in = x.detach().requires_grad_(with_graph)
        with torch.set_grad_enabled(with_graph):
            denoised = denoiser(x_in, sigma, cond)
        x_next = euler_step(x, denoised.detach().float(), sigma, sigma_next)
        if solver == "heun" and sigma_next > 0:
            with torch.no_grad():
                denoised_next = denoiser(x_next, sigma_next, cond).float()
            x_next = heun_step(
                x, x_next, denoised.detach().float(), denoised_next, sigma, sigma_next
            )
        if guided:
            correction = guide.gradient(x_in, denoised, sigma, step)
            x_next = x_next - correction
            errors.append(guide.last_error)
        if keep_predictions:
            predictions.append(denoised.detach().to(denoiser.dtype))
        x = x_next.detach()
        if on_step is not None:
            on_step(step + 1)
    return FrameResult(x, predictions, errors)
