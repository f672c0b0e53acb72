"""Colour-wheel pictures of flow (torchvision's ``flow_to_image``), beside the frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.utils import flow_to_image

from wdiff.flow.field import FlowField
from wdiff.video import VideoReader, VideoWriter


def flow_colours(flow: torch.Tensor, max_norm: float) -> np.ndarray:
    """float ``(N, 2, H, W)`` -> uint8 ``(N, H, W, 3)``, saturation scaled by one ``max_norm``."""
    # flow_to_image normalises by the largest vector in its input; appending one vector of
    # length max_norm makes every frame share that scale, so colours don't flicker.
    padded = torch.nn.functional.pad(flow, (0, 1))
    padded[:, 0, 0, -1] = max(max_norm, 1e-6)
    padded[:, 1, 0, -1] = 0.0
    return flow_to_image(padded)[..., :-1].permute(0, 2, 3, 1).numpy()


def write_flow_video(reader: VideoReader, field: FlowField, path: Path) -> None:
    """Write frame j beside the colour picture of ``forward[j]`` (N-1 frames, input's fps).

    Two passes over the flows, a pair at a time: the largest vector, then the pictures."""
    max_norm = max(
        float(rows["forward"].norm(dim=1).max()) for _, rows in field.batches(names=("forward",))
    )
    with VideoWriter(path, reader.info.fps) as writer:
        for index, frame in enumerate(reader.frames(count=field.pairs)):
            colours = flow_colours(field.forward[index : index + 1], max_norm)[0]
            writer.write(np.concatenate([frame, colours], axis=1))
