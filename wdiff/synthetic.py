"""Clips with known motion, made from one photograph: the ground truth for flow and warping.

Frame k is the photograph moved by ``step^k`` (an affine map about its centre, resampled once
from the original, so blur does not accumulate) and cropped to its centre. The true flow of
every consecutive pair is then ``step(x) - x``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def motion(kind: str, amount: float, center: tuple[float, float]) -> np.ndarray:
    """3x3 affine step: ``translation`` by (amount, -0.45 amount) px, ``rotation`` by ``amount``
    degrees, or ``zoom`` by a factor ``1 + amount``, about ``center``."""
    if kind == "translation":
        matrix = np.float64([[1, 0, amount], [0, 1, -0.45 * amount]])
    elif kind == "rotation":
        matrix = cv2.getRotationMatrix2D(center, amount, 1.0)
    elif kind == "zoom":
        matrix = cv2.getRotationMatrix2D(center, 0.0, 1.0 + amount)
    else:
        raise ValueError(f"unknown motion {kind!r}")
    return np.vstack([matrix, [0, 0, 1]])


def moved_photo(
    photo: np.ndarray, step: np.ndarray, frames: int, crop: int
) -> tuple[np.ndarray, torch.Tensor]:
    """uint8 frames ``(frames, crop, crop, 3)`` and the true per-pair flow ``(2, crop, crop)``."""
    height, width = photo.shape[:2]
    top, left = (height - crop) // 2, (width - crop) // 2
    clip = []
    for index in range(frames):
        total = np.linalg.matrix_power(step, index)[:2]
        moved = cv2.warpAffine(photo, total, (width, height), flags=cv2.INTER_CUBIC)
        clip.append(moved[top : top + crop, left : left + crop])
    ys, xs = np.mgrid[0:crop, 0:crop].astype(np.float64)
    xs, ys = xs + left, ys + top
    moved_x = step[0, 0] * xs + step[0, 1] * ys + step[0, 2]
    moved_y = step[1, 0] * xs + step[1, 1] * ys + step[1, 2]
    truth = torch.from_numpy(np.stack([moved_x - xs, moved_y - ys])).float()
    return np.stack(clip), truth
