"""Tiled denoising for frames larger than a model handles in memory (``--tile``).

``TiledDenoiser`` wraps any Denoiser: each call runs the model on overlapping tiles of the
working grid and blends the predictions. A tile's weight is 0 on the ``margin`` cells next to
an inner tile edge (where the model sees padding instead of the neighbouring content), then
ramps up linearly across the overlap; the weights are normalised to sum to 1. Tensors in the
condition with the frame's spatial size (SR upsampling, inpainting masks, SDXL's observation
latents) are cut like ``x``; everything else (prompts, size ids) is passed whole. Peak memory
follows the tile size, not the frame's; the cost is the overlap's recomputation.
"""

from __future__ import annotations

from typing import Any

import torch


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` cells covering ``length`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramp(size: int, overlap: int, margin: int, rise: bool, fall: bool) -> torch.Tensor:
    weight = torch.ones(size, dtype=torch.float64)
    edge = torch.zeros(overlap, dtype=torch.float64)
    ramp = torch.arange(1, overlap - margin + 1, dtype=torch.float64) / (overlap - margin + 1)
    edge[margin:] = ramp
    if rise:
        weight[:overlap] = torch.minimum(weight[:overlap], edge)
    if fall:
        weight[size - overlap :] = torch.minimum(weight[size - overlap :], edge.flip(0))
    return weight


def _cut(cond: Any, size: tuple[int, int], rows: slice, cols: slice) -> Any:
    if isinstance(cond, torch.Tensor) and cond.dim() >= 2 and tuple(cond.shape[-2:]) == size:
        return cond[..., rows, cols]
    if isinstance(cond, dict):
        return {key: _cut(value, size, rows, cols) for key, value in cond.items()}
    if isinstance(cond, (list, tuple)):
        return type(cond)(_cut(value, size, rows, cols) for value in cond)
    return cond


class TiledDenoiser:
    """``inner`` on ``tile`` x ``tile`` working-grid cells with ``overlap`` cells shared."""

    def __init__(self, inner, tile: int, overlap: int):
        if tile < 2 * overlap or overlap < 2:
            raise ValueError(f"tile {tile} needs an overlap of at least 2 and at most tile / 2")
        self.inner, self.tile, self.overlap = inner, tile, overlap
        self.margin = max(1, overlap // 4)

    def __getattr__(self, name: str):  # space, scale, channels, dtype, sigmas, encode, ...
        return getattr(self.inner, name)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height <= self.tile and width <= self.tile:
            return self.inner(x, sigma, cond)
        rows_at = tile_starts(height, self.tile, self.overlap)
        cols_at = tile_starts(width, self.tile, self.overlap)
        out = torch.zeros_like(x, dtype=torch.float32)
        total = torch.zeros(height, width, dtype=torch.float64, device=x.device)
        for top in rows_at:
            tile_h = min(self.tile, height)
            along_y = _ramp(tile_h, self.overlap, self.margin, top > 0, top + tile_h < height)
            for left in cols_at:
                tile_w = min(self.tile, width)
                along_x = _ramp(tile_w, self.overlap, self.margin, left > 0, left + tile_w < width)
                rows, cols = slice(top, top + tile_h), slice(left, left + tile_w)
                part = self.inner(
                    x[..., rows, cols], sigma, _cut(cond, (height, width), rows, cols)
                )
                weight = (along_y[:, None] * along_x[None, :]).to(x.device)
                pad = (left, width - left - tile_w, top, height - top - tile_h)
                out = out + torch.nn.functional.pad(part.float() * weight.float(), pad)
                total[rows, cols] += weight
        return (out / total.float()).to(x.dtype)
