"""RGB frames (uint8, or uint16 for more than 8 bits) <-> the pipeline's float
``(N, 3, H, W)`` tensors in ``[-1, 1]``."""

from __future__ import annotations

import numpy as np

from wdiff.video.info import DEEP_WHITE

_WHITE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): DEEP_WHITE}


def frames_to_tensor(frames: np.ndarray):
    """uint8 or uint16 ``(N, H, W, 3)`` or ``(H, W, 3)`` -> float32 torch ``(N, 3, H, W)``,
    black -1 and white 1 (uint8 255, uint16 ``DEEP_WHITE``: a uint16 frame of ``v << 8``
    gives the tensor of the uint8 frame ``v``). Every uint16 value comes back exactly from
    ``tensor_to_frames(..., deep=True)``."""
    import torch

    array = np.asarray(frames)
    if array.dtype not in _WHITE:
        raise ValueError(f"expected uint8 or uint16 frames, got {array.dtype}")
    half = _WHITE[array.dtype] / 2
    if array.ndim == 3:
        array = array[None]
    if array.dtype == np.uint16:  # torch's uint16 has no arithmetic on older versions
        array = array.astype(np.int32)
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)
    return tensor.float().div(half).sub(1.0)


def tensor_to_frames(tensor, deep: bool = False) -> np.ndarray:
    """float ``(N, 3, H, W)`` -> uint8 ``(N, H, W, 3)`` (-1 to 1 as 0 to 255), rounded and
    clipped; with ``deep``, uint16 (1 as ``DEEP_WHITE``, clipped to 0..65535) for outputs of
    more than 8 bits."""
    import torch

    if not deep:
        scaled = (tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5
        return scaled.round().to(dtype=torch.uint8).permute(0, 2, 3, 1).numpy()
    scaled = (tensor.detach().float().cpu() + 1.0) * (DEEP_WHITE / 2)
    rounded = scaled.round().clamp(0, 65535).to(dtype=torch.int32)
    return rounded.permute(0, 2, 3, 1).numpy().astype(np.uint16)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A uint16 frame rounded to uint8 (``v << 8`` is ``v``, super-whites 255); uint8 as it
    is."""
    if frame.dtype == np.uint8:
        return frame
    return np.minimum((frame.astype(np.uint32) + 128) >> 8, 255).astype(np.uint8)
