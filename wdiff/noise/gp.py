"""Warped GP noise (Warped Diffusion, Daras et al. 2024, §3.1): the ``gp`` warper.

Each channel is one random function ``xi`` on the plane (:mod:`wdiff.noise.features`). A frame's
noise is ``xi`` evaluated at a *position map*: frame 0 at the grid itself, frame j at
``p_j(x) = p_{j-1}(x + backward(x))``, so warping never interpolates noise, only positions.
Cells whose backward flow is invalid get positions of their own (fresh noise): the continued
map moved into a copy of the plane far away where nothing on screen clashes
(:func:`wdiff.noise.planes.rehome`); with ``extend=True`` they keep the continuous extension
(the map followed outside the frame). Where the motion squeezes or stretches the map beyond
``max_stretch`` (1.5: a singular value of its local Jacobian outside [1/1.5, 1.5]), cells are
born again at their own grid cell, so the noise stays unit-scale instead of streaking (#19,
docs/guidance.md). At most ``max_planes`` copies of the plane hold fresh noise; past that,
births clear room in one (#18, docs/long-videos.md). Direct evaluation costs O(cells * J); the
fast path (:class:`wdiff.noise.tiles.TileBank`) reads each position from 4 x 4 spline
coefficients of a tile of the plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wdiff.flow.motion import Motion
from wdiff.noise.base import NoiseState, Warper
from wdiff.noise.features import RandomFourierFeatures
from wdiff.noise.planes import BATCH_STRIDE, MAX_PLANES, rehome
from wdiff.noise.tiles import TileBank


@dataclass
class GPState:
    positions: torch.Tensor  # (B, 2, h, w) float64, cells


class GPWarper(Warper):
    """Warped GP noise: positions follow the flow, noise is ``xi`` read at the positions."""

    name = "gp"
    extra_type = GPState

    def __init__(
        self,
        features: int = 3000,
        length_scale: float = 2 / math.pi,
        truncation: float = 2.0,
        extend: bool = False,
        fast: bool = True,
        oversample: int = 4,
        tile: int = 32,
        max_stretch: float | None = 1.5,
        max_planes: int = MAX_PLANES,
    ):
        self.feature_count = features
        self.length_scale = length_scale
        self.truncation = truncation
        self.extend = extend
        self.fast = fast
        self.oversample = oversample
        self.tile = tile
        self.max_stretch = max_stretch
        self.max_planes = max_planes
        self._bank: TileBank | None = None
        self._bank_seed: tuple | None = None

    def init(self, shape: tuple[int, int, int, int], seed: int, device="cpu") -> NoiseState:
        batch, channels, height, width = shape
        positions = _grid(batch, height, width, device)
        positions[:, 0] += (
            BATCH_STRIDE * torch.arange(batch, device=device, dtype=torch.float64)[:, None, None]
        )
        state = NoiseState(0, torch.empty(0), seed, GPState(positions))
        state.noise = self.evaluate(state, channels)
        return state

    def state_tensors(self, state: NoiseState) -> dict[str, torch.Tensor]:
        tensors = super().state_tensors(state)
        if self._bank is not None and self._bank_seed[0] == state.seed:
            tensors |= {f"bank.{k}": v for k, v in self._bank.state_tensors().items()}
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor], frame: int, seed: int) -> NoiseState:
        state = super().load_state(tensors, frame, seed)
        bank = {key[5:]: value for key, value in tensors.items() if key.startswith("bank.")}
        if bank:
            self._features(seed, state.noise.shape[1], state.noise.device).load_state_tensors(bank)
        return state

    def _features(self, seed: int, channels: int, device) -> TileBank:
        key = (seed, channels, str(device))
        if self._bank is None or self._bank_seed != key:
            features = RandomFourierFeatures.sample(
                channels, self.feature_count, seed, self.length_scale, self.truncation, device
            )
            self._bank = TileBank(features, self.tile, self.oversample)
            self._bank_seed = key
        return self._bank

    def evaluate(self, state: NoiseState, channels: int) -> torch.Tensor:
        """``xi`` at the positions of ``state`` -> float32 ``(B, channels, h, w)``."""
        positions = state.extra.positions
        batch, _, height, width = positions.shape
        bank = self._features(state.seed, channels, positions.device)
        flat = positions.permute(0, 2, 3, 1).reshape(-1, 2)
        values = bank.evaluate(flat) if self.fast else bank.features.direct(flat).float()
        return values.view(channels, batch, height, width).permute(1, 0, 2, 3).contiguous()

    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        frame = state.frame + 1
        positions = state.extra.positions
        batch, _, height, width = positions.shape
        backward = motion.backward.to(torch.float64)
        grid = _grid(batch, height, width, positions.device)
        landing = grid + backward
        normalised = torch.stack(
            [landing[:, 0] * 2 / max(width - 1, 1) - 1, landing[:, 1] * 2 / max(height - 1, 1) - 1],
            dim=-1,
        )
        # positions = landing point + displacement there; the displacement is held constant
        # beyond the frame's edge, which is the continuous extension of the map
        displacement = positions - grid
        smooth = landing + F.grid_sample(
            displacement, normalised, mode="bilinear", padding_mode="border", align_corners=True
        )
        nearest = landing + F.grid_sample(
            displacement, normalised, mode="nearest", padding_mode="border", align_corners=True
        )
        # across a seam between generations, blending positions would invent far-away ones
        seam = (smooth - nearest).abs().amax(dim=1, keepdim=True) > 2.0
        moved = torch.where(seam, nearest, smooth)
        if not self.extend:
            births = ~motion.valid_backward.expand_as(moved[:, :1])[:, 0]
            if self.max_stretch is not None:  # over-stretched: fresh unit-spaced noise
                worn = ~seam[:, 0] & distorted(moved, self.max_stretch)
                moved = torch.where(worn[:, None], grid, moved)
                births = births | worn
            if births.any():
                moved = rehome(moved, births, self.max_planes)
        next_state = NoiseState(frame, torch.empty(0), state.seed, GPState(moved))
        next_state.noise = self.evaluate(next_state, state.noise.shape[1])
        return next_state


def distorted(positions: torch.Tensor, max_stretch: float) -> torch.Tensor:
    """Cells (B, h, w) True where the position map ``positions`` (B, 2, h, w) is stretched or
    compressed beyond ``max_stretch``: a singular value of its local Jacobian (forward
    differences to the right and down neighbours, the last row and column repeating their
    neighbour's) outside [1 / max_stretch, max_stretch]. Jumps over 2 cells (seams between
    generations) count as neither."""
    dx = positions[..., :, 1:] - positions[..., :, :-1]
    dy = positions[..., 1:, :] - positions[..., :-1, :]
    dx = torch.cat([dx, dx[..., -1:]], dim=-1)
    dy = torch.cat([dy, dy[..., -1:, :]], dim=-2)
    # singular values of the 2 x 2 Jacobian [dx dy] in closed form (a batched SVD is slow on GPUs)
    squares = dx.pow(2).sum(dim=1) + dy.pow(2).sum(dim=1)
    determinant = (dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0]).abs()
    gap = (squares.pow(2) - 4 * determinant.pow(2)).clamp_min(0).sqrt()
    largest = ((squares + gap) / 2).sqrt()
    smallest = determinant / largest.clamp_min(1e-12)
    seam = (dx.abs().amax(dim=1) > 2.0) | (dy.abs().amax(dim=1) > 2.0)
    out = (largest > max_stretch) | (smallest < 1 / max_stretch)
    return out & ~seam


def _grid(batch: int, height: int, width: int, device) -> torch.Tensor:
    """The cells' own positions (x, y), float64 ``(batch, 2, height, width)``."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64, device=device),
        torch.arange(width, dtype=torch.float64, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None].repeat(batch, 1, 1, 1)
