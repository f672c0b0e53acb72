"""The simple warpers the paper compares against: ``fixed`` (the same noise every frame),
``resample`` (new noise every frame), ``nearest`` and ``bilinear`` (the noise itself moved
along the flow, fresh white noise where the flow is invalid) and ``bilinear-gp`` (an exact GP
sample moved bilinearly)."""

from __future__ import annotations

import torch

from wdiff.flow.motion import Motion
from wdiff.flow.ops import sample_grid, warp_bilinear
from wdiff.noise.base import NoiseState, Warper, generator
from wdiff.noise.exact import gp_noise


class FixedWarper(Warper):
    """The same noise for every frame (a baseline: texture sticks to the screen)."""

    name = "fixed"

    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        return NoiseState(state.frame + 1, state.noise, state.seed)


class ResampleWarper(Warper):
    """Independent noise for every frame (a baseline: flicker)."""

    name = "resample"

    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        frame = state.frame + 1
        return NoiseState(frame, self.fresh(state, frame), state.seed)


class NearestWarper(Warper):
    """Noise moved along the flow by nearest-neighbour lookup; fresh where the flow is invalid."""

    name = "nearest"
    mode = "nearest"

    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        frame = state.frame + 1
        moved = _lookup(state.noise, motion.backward, self.mode)
        noise = torch.where(motion.valid_backward, moved, self.fresh(state, frame))
        return NoiseState(frame, noise, state.seed)


class BilinearWarper(NearestWarper):
    """Noise moved by bilinear interpolation: sub-pixel motion blends cells and loses variance."""

    name = "bilinear"
    mode = "bilinear"


class BilinearGPWarper(BilinearWarper):
    """The paper's "bilinear (GP)" baseline: an exact GP sample (``gp_noise``) moved by bilinear
    interpolation like ``bilinear``, with fresh GP samples where the flow is invalid."""

    name = "bilinear-gp"

    def init(self, shape: tuple[int, int, int, int], seed: int, device="cpu") -> NoiseState:
        return NoiseState(0, gp_noise(shape, generator(seed, self.name, 0)).to(device), seed)

    def fresh(self, state: NoiseState, frame: int) -> torch.Tensor:
        noise = gp_noise(state.noise.shape, generator(state.seed, self.name, frame))
        return noise.to(state.noise.device)


def _lookup(noise: torch.Tensor, backward: torch.Tensor, mode: str) -> torch.Tensor:
    # float64 coordinates: integer shifts then land exactly on cells
    noise64, backward64 = noise.double(), backward.double()
    if mode == "bilinear":
        return warp_bilinear(noise64, backward64).to(noise.dtype)
    grid = sample_grid(backward64)
    return torch.nn.functional.grid_sample(
        noise64, grid, mode="nearest", padding_mode="border", align_corners=True
    ).to(noise.dtype)
