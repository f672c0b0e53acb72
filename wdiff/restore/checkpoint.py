"""The resume checkpoint of a restore: the one place that knows what its state holds.

After every finished frame (batch-consistent: after each window) ``resume.RunState`` keeps the
frame, the report rows so far and these tensors, each part under its prefix: ``sampler.`` (the
``VideoSampler``'s noise and predictions), ``report.`` (``TemporalErrors``: the frames and
chained flow the warping errors need) and ``tiling.`` (``TilePolicy``: the tile size).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from wdiff.errors import WdiffError

PARTS = ("sampler", "report", "tiling")


@dataclass
class Resumed:
    """An interrupted run's state: frames before ``start`` are done (their ``rows`` kept);
    ``parts`` maps each of ``PARTS`` to its tensors (empty for a fresh run)."""

    start: int = 0
    rows: list[dict] = field(default_factory=list)
    parts: dict[str, dict[str, torch.Tensor]] = field(
        default_factory=lambda: {part: {} for part in PARTS}
    )


class Checkpoint:
    """Saves and loads a restore's state through ``run_state`` (a ``resume.RunState``, or None
    when nothing is kept)."""

    def __init__(self, run_state):
        self.run_state = run_state

    def load(self) -> Resumed:
        """The interrupted run's state, or a fresh run's."""
        if self.run_state is None or not self.run_state.exists():
            return Resumed()
        start, tensors, rows = self.run_state.load()
        parts = {
            part: {
                key[len(part) + 1 :]: value
                for key, value in tensors.items()
                if key.startswith(f"{part}.")
            }
            for part in PARTS
        }
        return Resumed(start, rows, parts)

    def kept_frames(self, count: int, deep: bool = False) -> Iterator[np.ndarray]:
        """The first ``count`` finished frames, ``(H, W, 3)`` uint8, or uint16 when ``deep``
        (an output of more than 8 bits); frames of the other type (kept by an earlier wdiff)
        are refused."""
        for frame in self.run_state.frames(count):
            if (frame.dtype == np.uint16) != deep:
                raise WdiffError(
                    f"{self.run_state.output}: the interrupted run kept "
                    f"{frame.dtype.itemsize * 8}-bit frames and this output takes "
                    f"{16 if deep else 8}-bit ones; add --overwrite to start over"
                )
            yield frame

    def save(
        self,
        index: int,
        frame: np.ndarray,
        rows: list[dict],
        parts: dict[str, dict[str, torch.Tensor] | None] | None,
    ) -> None:
        """Frame ``index`` (uint8, or uint16 for a deep output, ``(H, W, 3)``) is done. With
        ``parts`` (each of ``PARTS`` to its tensors) the state after it is recorded, so a
        resumed run starts at the next frame; without (inside a batch-consistent window), only
        the frame is kept."""
        if self.run_state is None:
            return
        if parts is None:
            self.run_state.save_frame(index, frame)
            return
        tensors = {
            f"{part}.{key}": value
            for part in PARTS
            for key, value in (parts.get(part) or {}).items()
        }
        self.run_state.save(index, frame, tensors, rows)
