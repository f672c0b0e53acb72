"""What each frame brings to the sampler: its condition and observation (the decoded frame, the
inpainting mask) and its motion from the previous frame, on the output grid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from wdiff.flow.motion import Motion
from wdiff.flow.ops import upscale_flow


class FrameInputs:
    """Per-frame inputs of a restore that starts at frame ``start``.

    ``field`` is the input's ``FlowField`` (None for a still), its flows upscaled by ``factor``
    to the output size; ``masks`` a ``video.MaskReader`` (inpainting) read as frames are
    conditioned, in order, so no more than one mask frame is held.
    """

    def __init__(
        self, denoiser, task, prompt: str | None, field, factor: int, device, masks=None, start=0
    ):
        self.denoiser, self.task, self.prompt = denoiser, task, prompt
        self.field, self.factor, self.device = field, factor, device
        self._masks: Iterator[np.ndarray] | None = masks.frames(start) if masks else None
        self._next_mask = start
        self._last_motion: tuple[int, Motion] | None = None
        self._observed: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # inpainting

    def condition(self, index: int, frame: np.ndarray) -> tuple[Any, torch.Tensor, Any]:
        """Frame ``index`` (``(H, W, 3)`` uint8, or uint16 from a deep source) -> (the
        denoiser's condition, the frame as ``(1, 3, H, W)`` in [-1, 1], its hole mask bool
        ``(1, 1, H, W)`` or None)."""
        from wdiff.video import frames_to_tensor

        tensor = frames_to_tensor(frame).to(self.device)
        mask = None
        if self._masks is not None:
            if index != self._next_mask:
                raise RuntimeError(f"mask {index} asked for, {self._next_mask} is next")
            self._next_mask += 1
            mask = torch.from_numpy(np.asarray(next(self._masks)))[None, None].bool()
            mask = mask.to(self.device)
            self._observed[index] = (tensor, mask)
        return self.denoiser.condition(self.task, tensor, mask, self.prompt), tensor, mask

    def take_observed(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inpainting: frame ``index`` as conditioned and its hole mask, once (then dropped:
        a batch-consistent window holds its frames until they are written)."""
        return self._observed.pop(index)

    def motion(self, index: int) -> Motion:
        """Frame ``index - 1`` -> ``index`` on the output's pixel grid (the sampler and the
        report ask for the same pair one after the other: the last one is kept)."""
        if self._last_motion is not None and self._last_motion[0] == index:
            return self._last_motion[1]
        pair = slice(index - 1, index)
        parts = []
        for flow, valid in (
            (self.field.backward, self.field.valid_backward),
            (self.field.forward, self.field.valid_forward),
        ):
            parts += upscale_flow(flow[pair].float(), valid[pair], self.factor)
        motion = Motion(*(t.to(self.device) for t in parts))
        self._last_motion = (index, motion)
        return motion
