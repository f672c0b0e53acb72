"""Motion between frames: one pair (``Motion``), and the flow from frame 0 grown pair by pair
(``ChainedFlow``). Flows are in grid cells, ``(dx, dy)``; valid masks bool (see ``flow.ops``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdiff.flow.ops import chain, chain_valid, resize_to_grid


@dataclass
class Motion:
    """How frame j relates to frame j-1, on one grid (flows in grid cells, ``(dx, dy)``).

    backward ``(B, 2, h, w)`` maps frame j to j-1 and valid_backward ``(B, 1, h, w)`` says where
    that holds (over frame j's cells); forward and valid_forward are the same from j-1 to j.
    """

    backward: torch.Tensor
    valid_backward: torch.Tensor
    forward: torch.Tensor
    valid_forward: torch.Tensor

    @classmethod
    def from_field(cls, field, index: int, grid: int = 1, device=None) -> Motion:
        """Frame ``index - 1`` -> ``index`` of a FlowField, on a grid ``grid`` times coarser."""
        pair = slice(index - 1, index)
        motion = cls(
            field.backward[pair],
            field.valid_backward[pair],
            field.forward[pair],
            field.valid_forward[pair],
        ).to_grid(grid)
        return cls(*(t.to(device) for t in motion.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.backward, self.valid_backward, self.forward, self.valid_forward

    def to_grid(self, grid: int) -> Motion:
        """The same motion on a grid ``grid`` times coarser (``flow.ops.resize_to_grid``)."""
        if grid == 1:
            return self
        backward, valid_backward = resize_to_grid(self.backward, self.valid_backward, grid)
        forward, valid_forward = resize_to_grid(self.forward, self.valid_forward, grid)
        return Motion(backward, valid_backward, forward, valid_forward)


class ChainedFlow:
    """The forward flow from frame 0 to the latest frame ``(B, 2, h, w)`` and where it holds
    ``(B, 1, h, w)``, over frame 0's cells; both None before the first pair is added."""

    def __init__(self, flow: torch.Tensor | None = None, valid: torch.Tensor | None = None):
        self.flow, self.valid = flow, valid

    def add(self, forward: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Extend by the next pair's forward flow and validity; returns the chained pair."""
        if self.flow is None:
            self.flow, self.valid = forward, valid
        else:  # both from the flow up to the previous frame
            self.flow, self.valid = (
                chain(self.flow, forward),
                chain_valid(self.flow, self.valid, valid),
            )
        return self.flow, self.valid
