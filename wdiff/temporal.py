"""Warping errors of a stream of frames (Lai et al. 2018, ``metrics.warping_error``): each frame
against the previous one, and against frame 0 through the flow chained from it
(``flow.ChainedFlow``); for a latent model also in its working space, the pixel flows moved to
the latent grid by ``flow.ops.resize_to_grid``; for inpainting also inside the hole and outside
it (``metrics.hole_cells``: cells that touch the hole at either end, and the rest). ``wdiff
eval`` and the restore report both score frames here, so the two give the same numbers for the
same frames and flows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdiff.flow.motion import ChainedFlow
from wdiff.flow.ops import resize_to_grid
from wdiff.metrics import hole_cells, warping_error

STATE_NAMES = (
    "previous",
    "first",
    "previous_latent",
    "first_latent",
    "previous_hole",
    "first_hole",
)


@dataclass
class FrameErrors:
    """One frame's warping errors (None for frame 0, latent ones without a latent, and those
    inside and outside the hole without holes or without a cell there)."""

    previous: float | None = None
    first: float | None = None
    latent_previous: float | None = None
    latent_first: float | None = None
    previous_hole: float | None = None
    previous_outside: float | None = None
    first_hole: float | None = None
    first_outside: float | None = None


class TemporalErrors:
    """Frames in order through :meth:`add`; keeps the previous and first frames (and latents,
    and holes) and the chained flow, all of which :meth:`state_tensors` gives for resuming.

    Frames are ``(1, C, H, W)`` (RGB in [0, 1] for pixel errors); latents ``(1, c, H/s, W/s)``
    with ``s = latent_scale`` pixels per cell; holes bool ``(1, 1, H, W)``.
    """

    def __init__(self, latent_scale: int = 1):
        self.latent_scale = latent_scale
        self.previous: torch.Tensor | None = None
        self.first: torch.Tensor | None = None
        self.previous_latent: torch.Tensor | None = None
        self.first_latent: torch.Tensor | None = None
        self.previous_hole: torch.Tensor | None = None
        self.first_hole: torch.Tensor | None = None
        self.chained = ChainedFlow()

    def add(
        self,
        frame: torch.Tensor,
        forward: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        latent: torch.Tensor | None = None,
        hole: torch.Tensor | None = None,
    ) -> FrameErrors:
        """Score the next frame; ``forward`` ``(1, 2, H, W)`` and ``valid`` ``(1, 1, H, W)`` are
        the flow from the previous frame to it, in pixels (None for frame 0); ``hole`` the
        frame's inpainting hole (given for every frame, or for none)."""
        errors = FrameErrors()
        if forward is None:
            self.first, self.first_latent, self.first_hole = frame, latent, hole
        else:
            errors.previous = _error(frame, self.previous, forward, valid)
            flow, flow_valid = self.chained.add(forward, valid)
            errors.first = _error(frame, self.first, flow, flow_valid)
            if hole is not None:
                errors.previous_hole, errors.previous_outside = _split(
                    frame, self.previous, forward, valid, self.previous_hole, hole
                )
                errors.first_hole, errors.first_outside = _split(
                    frame, self.first, flow, flow_valid, self.first_hole, hole
                )
            if latent is not None:
                scale = self.latent_scale
                step = resize_to_grid(forward, valid, scale)
                errors.latent_previous = _error(latent, self.previous_latent, *step)
                whole = resize_to_grid(flow, flow_valid, scale)
                errors.latent_first = _error(latent, self.first_latent, *whole)
        self.previous, self.previous_latent, self.previous_hole = frame, latent, hole
        return errors

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The frames kept (those set) and the chained flow (once there is one)."""
        tensors = {name: getattr(self, name) for name in STATE_NAMES}
        if self.chained.flow is not None:
            tensors |= {"chained_flow": self.chained.flow, "chained_valid": self.chained.valid}
        return {name: value for name, value in tensors.items() if value is not None}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        moved = {name: value.to(device) for name, value in tensors.items()}
        for name in STATE_NAMES:
            setattr(self, name, moved.get(name))
        if "chained_flow" in moved:
            self.chained = ChainedFlow(moved["chained_flow"], moved["chained_valid"])


def _error(later, earlier, flow, valid) -> float:
    return float(warping_error(later, earlier, flow, valid)[0])


def _split(later, earlier, flow, valid, earlier_hole, later_hole) -> tuple[float | None, ...]:
    """The warping error over the valid cells touching the hole, and over the others (None
    where there is no such cell)."""
    inside = hole_cells(earlier_hole, later_hole, flow)
    regions = (valid & inside, valid & ~inside)
    return tuple(_error(later, earlier, flow, r) if bool(r.any()) else None for r in regions)
