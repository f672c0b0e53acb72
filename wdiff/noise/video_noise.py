"""Noise for every frame of a video, warped along its flows, and the statistics of the result."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from wdiff.flow.field import FlowField
from wdiff.flow.motion import Motion
from wdiff.flow.ops import warp_bilinear
from wdiff.noise.base import Warper
from wdiff.noise.tiles import MAX_ATLAS, ROOM, SCRATCH


def grid_shape(width: int, height: int, grid: int) -> tuple[int, int]:
    """(h, w) of a noise grid ``grid`` times coarser than a ``width`` x ``height`` frame."""
    return math.ceil(height / grid), math.ceil(width / grid)


def warp_video_noise(
    field: FlowField,
    warper: Warper,
    channels: int,
    seed: int,
    grid: int = 1,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, Motion | None]]:
    """Yield (noise ``(1, C, h, w)``, motion from the previous frame or None) for each frame."""
    width, height = field.size
    h, w = grid_shape(width, height, grid)
    state = warper.init((1, channels, h, w), seed, device)
    yield warper.sample(state), None
    for index in range(1, field.pairs + 1):
        motion = Motion.from_field(field, index, grid, device)
        state = warper.warp(state, motion)
        yield warper.sample(state), motion


def frame_stats(noise: torch.Tensor, previous: torch.Tensor | None, motion: Motion | None) -> dict:
    """mean, std, lag-1 spatial autocorrelation, and correlation with the previous frame's noise
    carried along the backward flow (valid cells only) for one frame's noise ``(1, C, h, w)``."""
    values = noise.double()
    centred = values - values.mean()
    variance = float(centred.pow(2).mean())
    horizontal = float((centred[..., 1:] * centred[..., :-1]).mean())
    vertical = float((centred[..., 1:, :] * centred[..., :-1, :]).mean())
    row = {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "lag1_autocorrelation": (horizontal + vertical) / 2 / max(variance, 1e-12),
        "temporal_correlation": None,
    }
    if previous is not None and motion is not None:
        carried = warp_bilinear(previous.double(), motion.backward.double())
        valid = motion.valid_backward.expand_as(values)
        if valid.sum() > 1:
            pair = torch.stack([values[valid], carried[valid]])
            row["temporal_correlation"] = float(torch.corrcoef(pair)[0, 1])
    return row


def write_noise_video(reader, noise: torch.Tensor, path) -> None:
    """Each frame beside its noise (channels 0-2 as RGB, +-2 std to 0..255, cells enlarged)."""
    import numpy as np
    import torch.nn.functional as F

    from wdiff.video import VideoWriter

    height, width = reader.info.height, reader.info.width
    cells_h, cells_w = noise.shape[-2:]
    enlarged = (cells_h * math.ceil(height / cells_h), cells_w * math.ceil(width / cells_w))
    with VideoWriter(path, reader.info.fps) as writer:
        for index, frame in enumerate(reader.frames(count=noise.shape[0])):
            shown = noise[index : index + 1, :3]
            if shown.shape[1] < 3:
                shown = shown[:, :1].expand(-1, 3, -1, -1)
            big = F.interpolate(shown, size=enlarged, mode="nearest")[0, :, :height, :width]
            picture = ((big * 0.25 + 0.5).clamp(0, 1) * 255).round().byte()
            writer.write(np.concatenate([frame, picture.permute(1, 2, 0).numpy()], axis=1))


def noise_memory_bytes(warper: Warper, frames: int, channels: int, h: int, w: int) -> int:
    """A generous estimate of the bytes ``wdiff warp-noise`` holds for ``frames`` frames of
    ``(channels, h, w)`` noise: all frames twice (the list and the saved tensor), a frame's
    working copies, and the GP's per-channel Fourier features and tile atlas."""
    cells = channels * h * w
    total = (2 * frames + 16) * cells * 4
    if hasattr(warper, "feature_count"):
        side = warper.tile * warper.oversample + 4
        screen = max(16, (math.ceil(w / warper.tile) + 1) * (math.ceil(h / warper.tile) + 1))
        tiles = min(math.ceil(ROOM * screen), MAX_ATLAS) + SCRATCH  # atlas and scratch atlas
        total += channels * (warper.feature_count * 32 + tiles * side * side * 4)
    return total
