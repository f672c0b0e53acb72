"""Optical flow estimators between two uint8 RGB frames: OpenCV DIS and Farneback, torchvision RAFT.

Each estimator is called as ``estimator(frames_a, frames_b) -> flow`` with uint8 ``(N, H, W, 3)``
arrays and returns float32 torch ``(N, 2, H, W)``: ``a(x) ≈ b(x + flow(x))``. ``key`` holds
everything that changes the result, for the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from wdiff.errors import WdiffError
from wdiff.flow.cache import content_digest

METHODS = ("dis", "farneback", "raft")

# DIS presets: OpenCV's fast and medium, and "fine", which adds the finest pyramid level
# (about 4x slower than medium; end-point error about half on the tests' photographs).
DIS_PRESETS = ("fast", "medium", "fine")


MIN_SIDE = 16  # frames smaller than this are padded before OpenCV's estimators


class OpenCVFlow:
    """DIS (Kroeger et al. 2016) or Farneback flow on grayscale frames, on the CPU."""

    def __init__(self, method: str = "dis", preset: str = "fine"):
        if method not in ("dis", "farneback"):
            raise ValueError(method)
        if method == "dis" and preset not in DIS_PRESETS:
            raise WdiffError(f"--dis-preset {preset}: use one of {', '.join(DIS_PRESETS)}")
        self.method = method
        self.preset = preset if method == "dis" else "default"
        self.key = {"method": method, "preset": self.preset, "opencv": cv2.__version__}
        cv2.setNumThreads(os.cpu_count() or 1)

    def _dis(self):
        base = (
            cv2.DISOPTICAL_FLOW_PRESET_FAST
            if self.preset == "fast"
            else (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        )
        dis = cv2.DISOpticalFlow_create(base)
        if self.preset == "fine":
            dis.setFinestScale(0)
            dis.setGradientDescentIterations(25)
            dis.setVariationalRefinementIterations(10)
        return dis

    def __call__(self, frames_a: np.ndarray, frames_b: np.ndarray) -> torch.Tensor:
        flows = []
        dis = self._dis() if self.method == "dis" else None
        for a, b in zip(frames_a, frames_b, strict=True):
            height, width = a.shape[:2]
            # DIS refuses frames under 12 px on both sides: pad tiny frames by their edges
            pad = ((0, max(0, MIN_SIDE - height)), (0, max(0, MIN_SIDE - width)))
            gray_a = np.pad(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), pad, mode="edge")
            gray_b = np.pad(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), pad, mode="edge")
            if dis is not None:
                flow = dis.calc(gray_a, gray_b, None)
            else:
                flow = cv2.calcOpticalFlowFarneback(gray_a, gray_b, None, 0.5, 5, 15, 5, 7, 1.5, 0)
            flows.append(torch.from_numpy(flow[:height, :width]).permute(2, 0, 1))
        return torch.stack(flows).float()


RAFT_FILES = {
    "large": "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
    "small": "raft_small_C_T_V2-01064c6d.pth",
}


def find_raft_weights(size: str, weights: Path | None) -> Path:
    """The local RAFT weights: ``weights`` if given, else torch's hub cache. Never downloads."""
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise WdiffError(f"{weights}: no such RAFT weights file; check --raft-weights")
        return weights
    cached = Path(torch.hub.get_dir()) / "checkpoints" / RAFT_FILES[size]
    if cached.is_file():
        return cached
    raise WdiffError(
        f"{cached}: RAFT-{size} needs its weights file {RAFT_FILES[size]}; wdiff never "
        f"downloads: copy it to {cached.parent}/ or pass --raft-weights FILE (or use --flow dis)"
    )


def _loads_as(size: str, path: Path) -> bool:
    """Whether ``path`` holds torchvision RAFT-``size`` weights (for a better error message)."""
    from torchvision.models.optical_flow import raft_large, raft_small

    model = (raft_large if size == "large" else raft_small)(weights=None, progress=False)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception:  # noqa: BLE001 - any failure means "no"
        return False
    return True


class RaftFlow:
    """torchvision RAFT (Teed & Deng 2020) from a local weights file."""

    def __init__(
        self,
        size: str = "large",
        weights: Path | None = None,
        device: torch.device | str = "cpu",
        iterations: int = 12,
    ):
        from torchvision.models.optical_flow import raft_large, raft_small

        if size not in RAFT_FILES:
            raise WdiffError(f"--raft-model {size}: use large or small")
        path = find_raft_weights(size, weights)
        model = (raft_large if size == "large" else raft_small)(weights=None, progress=False)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as error:
            other = "small" if size == "large" else "large"
            hint = "give torchvision's raft weights"
            if _loads_as(other, path):
                hint = f"it holds RAFT-{other} weights: add --raft-model {other}"
            raise WdiffError(
                f"{path}: not a RAFT-{size} weights file ({type(error).__name__}); {hint}"
            ) from error
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.iterations = iterations
        self.key = {
            "method": "raft",
            "size": size,
            "weights": content_digest(path),
            "iterations": iterations,
        }

    @torch.inference_mode()
    def __call__(self, frames_a: np.ndarray, frames_b: np.ndarray) -> torch.Tensor:
        a = _raft_input(frames_a, self.device)
        b = _raft_input(frames_b, self.device)
        height, width = frames_a.shape[1:3]
        # RAFT needs sides that are multiples of 8 and at least 128 (its correlation pyramid)
        pad_h = max(128, height + (-height) % 8) - height
        pad_w = max(128, width + (-width) % 8) - width
        if pad_h or pad_w:
            a = torch.nn.functional.pad(a, (0, pad_w, 0, pad_h), mode="replicate")
            b = torch.nn.functional.pad(b, (0, pad_w, 0, pad_h), mode="replicate")
        flow = self.model(a, b, num_flow_updates=self.iterations)[-1]
        return flow[:, :, :height, :width].float().cpu()


def _raft_input(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(device)
    return tensor.float() / 127.5 - 1.0


def make_estimator(
    method: str = "dis",
    *,
    dis_preset: str = "fine",
    raft_model: str = "large",
    raft_weights: Path | None = None,
    device: torch.device | str = "cpu",
    option: str = "--flow",
):
    """Build the estimator named by ``method`` (dis, farneback, raft); ``option`` is the
    command-line option that named it, for the error message."""
    if method in ("dis", "farneback"):
        return OpenCVFlow(method, dis_preset)
    if method == "raft":
        return RaftFlow(raft_model, raft_weights, device)
    raise WdiffError(f"{option} {method}: use one of {', '.join(METHODS)}")
