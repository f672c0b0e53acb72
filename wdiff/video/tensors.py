"""uint8 RGB frames <-> the pipeline's float ``(N, 3, H, W)`` tensors in ``[-1, 1]``."""

from __future__ import annotations

import numpy as np


def frames_to_tensor(frames: np.ndarray):
    """uint8 ``(N, H, W, 3)`` or ``(H, W, 3)`` -> float32 torch ``(N, 3, H, W)`` in [-1, 1]."""
    import torch

    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)
    return tensor.float().div(127.5).sub(1.0)


def tensor_to_frames(tensor) -> np.ndarray:
    """float ``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)``, rounded and clipped."""
    import torch

    scaled = (tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(dtype=torch.uint8).permute(0, 2, 3, 1).numpy()
