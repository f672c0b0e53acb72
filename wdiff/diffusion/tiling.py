"""Tiled denoising for frames larger than a model handles in memory (``--tile``).

``TiledDenoiser`` wraps any Denoiser: each call runs the model on overlapping tiles of the
working grid and blends the predictions. A tile's weight is 0 on the ``margin`` cells next to
an inner tile edge (where the model sees padding instead of the neighbouring content), then
ramps up linearly across the overlap; the weights are normalised to sum to 1. Tensors in the
condition with the frame's spatial size (SR upsampling, inpainting masks, SDXL's observation
latents) are cut like ``x``; everything else (prompts, size ids) is passed whole. Peak memory
follows the tile size, not the frame's, also with full guidance: each tile is checkpointed
(its activations are recomputed in the backward pass instead of kept). The cost is the
overlap's recomputation, and with full guidance one more forward pass per tile.

``--tile auto`` chooses the size per frame with ``auto_tile``; the pipeline redoes a frame that
runs out of memory (``is_out_of_memory``) with a smaller tile.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.checkpoint import checkpoint


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
                inputs = (x[..., rows, cols], sigma, _cut(cond, (height, width), rows, cols))
                if torch.is_grad_enabled() and x.requires_grad:
                    # full guidance back-propagates through every tile: recompute each tile's
                    # activations in the backward pass so that memory stays at one tile's
                    part = checkpoint(self.inner, *inputs, use_reentrant=False)
                else:
                    part = self.inner(*inputs)
                weight = (along_y[:, None] * along_x[None, :]).to(x.device)
                pad = (left, width - left - tile_w, top, height - top - tile_h)
                out = out + torch.nn.functional.pad(part.float() * weight.float(), pad)
                total[rows, cols] += weight
        return (out / total.float()).to(x.dtype)


# ------------------------------------------------------------------------------ --tile auto

AUTO_FLOOR_PIXELS = 64  # --tile auto never goes below tiles of this many output pixels


class TilesExhausted(RuntimeError):
    """``--tile auto`` ran out of memory even at its smallest tile (``pixels`` per side)."""

    def __init__(self, message: str, pixels: int):
        super().__init__(message)
        self.pixels = pixels


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error, or a CPU (or MPS) allocation failure, which torch raises as a
    plain ``RuntimeError`` ("DefaultCPUAllocator: can't allocate memory ...")."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    if not isinstance(error, RuntimeError) or isinstance(error, TilesExhausted):
        return False
    message = str(error).lower()
    return any(
        words in message
        for words in ("can't allocate memory", "not enough memory", "out of memory")
    )


def auto_tile(
    grid: tuple[int, int],
    max_tile: int | None,
    overlap: int,
    scale: int,
    failed: int | None = None,
) -> int:
    """The tile side, in working-grid cells (0 = whole frames), ``--tile auto`` uses for frames of
    ``grid`` = (h, w) cells, with ``overlap`` cells shared and ``scale`` pixels per cell.

    (a) First (``failed`` None): the model's largest native size ``max_tile`` (a Denoiser's
    optional attribute) when the frame exceeds it, else 0: whole frames.
    (b) After the size ``failed`` ran out of memory (0 = whole frames): half of it (of the
    frame's longer side for whole frames), rounded down to a multiple of 8 cells above 8 cells.
    Below the floor, twice the overlap or 64 pixels, whichever is larger, it raises
    ``TilesExhausted`` (its message is the caller's to write; ``pixels`` is the floor).
    """
    longest = max(grid)
    if failed is None:
        return max_tile if max_tile and longest > max_tile else 0
    half = (failed or longest) // 2
    if half > 8:
        half -= half % 8
    floor = max(2 * overlap, -(-AUTO_FLOOR_PIXELS // scale))
    if half < floor:
        raise TilesExhausted("no smaller tile to try", floor * scale)
    return half


def tile_in_use(tile: int, grid: tuple[int, int]) -> int:
    """``tile`` cells, or 0 (whole frames) when it is 0 or the ``grid`` = (h, w) fits in one."""
    return 0 if not tile or (tile >= grid[0] and tile >= grid[1]) else tile


def tile_overlap(tile: int, overlap: int) -> int:
    """The overlap tiles of ``tile`` cells share: ``overlap``, at most half the tile."""
    return min(overlap, tile // 2) if tile else overlap


def tiled(denoiser, tile: int, overlap: int, grid: tuple[int, int]):
    """``denoiser`` on tiles of ``tile`` cells (``tile_overlap`` shared), or ``denoiser`` itself
    when ``tile`` is 0 or the frame fits in one tile."""
    if not tile_in_use(tile, grid):
        return denoiser
    return TiledDenoiser(denoiser, tile, tile_overlap(tile, overlap))
