"""The Denoiser protocol: what every sampler needs from a model (k-diffusion's idea).

Samplers see ``D(x, sigma, cond) -> x0_hat`` in the EDM sigma-parametrisation: ``x = x0 + sigma
* n``. Each adapter does its own input scaling and prediction-type conversion (eps, v, x0).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Denoiser(Protocol):
    """A model in the sigma-parametrisation, in its working space (pixels or latents).

    ``space`` is "pixel" or "latent"; ``scale`` is pixels per working-space cell (1 or 8);
    ``channels`` the working space's channels; ``dtype`` the dtype the network runs in;
    ``sigma_data`` the data's standard deviation in the working space (0.5 for [-1, 1] pixels).

    Optional: ``max_tile``, the largest working-grid size (cells per side) the model works at
    natively; ``--tile auto`` tiles larger frames at that size. Absent or None: any size.
    """

    space: str
    scale: int
    channels: int
    dtype: torch.dtype
    sigma_data: float
    takes_prompt: bool  # whether ``condition`` uses ``prompt`` (text-conditioned models)

    def sigmas(self, steps: int) -> torch.Tensor:
        """``steps + 1`` noise levels, float32, descending, the last 0."""

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels ``(N, 3, H, W)`` -> working space ``(N, channels, H/scale, W/scale)``."""

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Working space -> [-1, 1] pixels."""

    def condition(
        self,
        task: Any,
        frame: torch.Tensor,
        mask: torch.Tensor | None = None,
        prompt: str | None = None,
    ) -> Any:
        """What ``__call__`` needs besides x and sigma for one frame of ``task``."""

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        """The denoised prediction ``x0_hat``, shaped like ``x``; differentiable in ``x``."""


def init_noise_sigma(denoiser: Denoiser, sigmas: torch.Tensor) -> torch.Tensor:
    """The standard deviation of the first x for ``sigmas``: the denoiser's own
    ``init_noise_sigma(sigmas)`` when it has one (a diffusers folder starts as its pipeline
    does: ``sqrt(sigma_max^2 + 1)`` for 'leading' and variance-preserving schedules), else
    ``sigmas[0]``."""
    own = getattr(denoiser, "init_noise_sigma", None)
    if own is None:
        return sigmas[0]
    return torch.as_tensor(own(sigmas), dtype=torch.float32, device=sigmas.device)
