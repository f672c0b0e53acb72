"""The one interface every noise warper implements (``Warper``), its state (``NoiseState``)
and seeded generators.

A warper carries a *state* from frame to frame: ``state = warper.init(shape, seed)`` for frame 0,
``state = warper.warp(state, motion)`` for each next frame, and ``warper.sample(state)`` gives
that frame's noise, float32 ``(B, C, h, w)`` (B videos or batch items, C channels, on the noise
grid). Noise for frame j is a pure function of (seed, method, motions up to j) on one device.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from wdiff.flow.motion import Motion


@dataclass
class NoiseState:
    """What every warper keeps: the frame index and the current noise; ``extra`` is its own."""

    frame: int
    noise: torch.Tensor
    seed: int
    extra: Any = None


def generator(seed: int, *keys: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded from ``seed`` and ``keys`` (e.g. the method and frame index)."""
    text = "/".join(str(part) for part in (seed, *keys))
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return torch.Generator(device=device).manual_seed(value & ((1 << 63) - 1))


def white_noise(shape, seed: int, *keys: object, device="cpu") -> torch.Tensor:
    device = torch.device(device)
    return torch.randn(shape, generator=generator(seed, *keys, device=device), device=device)


class Warper(ABC):
    """Base of all noise warpers; see the module docstring for the protocol."""

    name: str = ""
    extra_type: type | None = None  # the dataclass of ``NoiseState.extra``, if any

    def state_tensors(self, state: NoiseState) -> dict[str, torch.Tensor]:
        """The state as named tensors (for resuming); with ``state.frame`` and ``state.seed``
        it is all :meth:`load_state` needs."""
        tensors = {"noise": state.noise}
        if state.extra is not None:
            tensors |= {f"extra.{key}": value for key, value in vars(state.extra).items()}
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor], frame: int, seed: int) -> NoiseState:
        extra = {key[6:]: value for key, value in tensors.items() if key.startswith("extra.")}
        state_extra = self.extra_type(**extra) if extra and self.extra_type else None
        return NoiseState(frame, tensors["noise"], seed, state_extra)

    def init(self, shape: tuple[int, int, int, int], seed: int, device="cpu") -> NoiseState:
        """Frame 0's state for noise of ``shape`` = (B, C, h, w)."""
        return NoiseState(0, white_noise(shape, seed, self.name, 0, device=device), seed)

    @abstractmethod
    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        """The next frame's state, moved along ``motion``."""

    def sample(self, state: NoiseState) -> torch.Tensor:
        """This frame's noise, float32 ``(B, C, h, w)``."""
        return state.noise

    def fresh(self, state: NoiseState, frame: int) -> torch.Tensor:
        """White noise for cells that nothing can be carried to (disoccluded, entering)."""
        return white_noise(
            state.noise.shape, state.seed, self.name, frame, device=state.noise.device
        )
