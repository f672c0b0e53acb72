"""The GP of the noise exactly, without features: its covariance (``kernel``) and independent
samples on a grid (``gp_noise``, what training adds to clean images)."""

from __future__ import annotations

import functools
import math

import torch


def kernel(
    lag: torch.Tensor, length_scale: float = 2 / math.pi, truncation: float = 2.0
) -> torch.Tensor:
    """Covariance of the truncated-spectrum GP at integer lag ``(dx, dy)`` (..., 2): the product
    over axes of E[cos(z d)] for z ~ N(0, l^-2) truncated at ``truncation`` sigma."""
    sigma = 1.0 / length_scale
    grid = torch.linspace(-truncation, truncation, 20001, dtype=torch.float64)
    density = torch.exp(-0.5 * grid**2)
    density = density / density.sum()
    lag = lag.to(torch.float64)
    per_axis = (torch.cos(lag[..., None] * grid * sigma) * density).sum(-1)
    return per_axis.prod(-1)


def gp_noise(
    shape: tuple[int, int, int, int],
    generator: torch.Generator,
    length_scale: float = 2 / math.pi,
    truncation: float = 2.0,
) -> torch.Tensor:
    """Independent exact samples of the same GP on the grid, float32 ``(B, C, h, w)`` (training).

    The kernel is a product over axes, so a sample is ``R_y W R_x^T`` with W white and ``R``
    the symmetric square root of the 1-D covariance matrix: O(h w (h + w)) per item.
    """
    batch, channels, height, width = shape
    roots = [_axis_root(size, length_scale, truncation) for size in (height, width)]
    white = torch.randn(shape, generator=generator, dtype=torch.float64)
    return (roots[0] @ white @ roots[1].T).float()


@functools.lru_cache(maxsize=16)
def _axis_root(size: int, length_scale: float, truncation: float) -> torch.Tensor:
    lags = torch.arange(size, dtype=torch.float64)
    per_lag = kernel(torch.stack([lags, torch.zeros_like(lags)], -1), length_scale, truncation)
    distance = (lags[:, None] - lags[None]).abs().long()
    values, vectors = torch.linalg.eigh(per_lag[distance])  # Toeplitz: one value per lag
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
