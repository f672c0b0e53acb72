"""Metrics that need network weights, which wdiff never downloads: each takes a local file.

- LPIPS (Zhang et al. 2018, the ``lpips`` package's AlexNet variant): its linear heads ship
  inside the package; the AlexNet backbone comes from ``--lpips-weights``, a torchvision
  ``alexnet`` state dict (e.g. ``alexnet-owt-7be5be79.pth``). Per frame, on [-1, 1] RGB.
- FID: Frechet distance between Inception-v3 pool features (2048) of the output frames and the
  reference frames, weights from ``--fid-weights``, a torchvision ``inception_v3`` state dict
  (e.g. ``inception_v3_google-0cc3c7bd.pth``). torchvision's Inception is not the TF one of
  published FIDs, so compare values only with each other. One value per video.
- CLIP score (Hessel et al. 2021): ``100 * max(cos(image, text), 0)`` per frame, with a
  transformers CLIP model folder from ``--clip-model`` and the text of ``--prompt``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from wdiff.errors import WdiffError


def _state_dict(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WdiffError(f"{path}: no such {what} weights file; give a local .pth state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WdiffError(f"{path}: not a readable {what} state dict ({first})") from error
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WdiffError(f"{path}: holds no {what} state dict (name: tensor); give a .pth of one")
    return state


class LPIPSMetric:
    """LPIPS with local AlexNet weights; ``__call__(a, b)`` on ``(N, 3, H, W)`` in [0, 1]."""

    def __init__(self, alexnet_weights: Path, device: torch.device | str = "cpu"):
        try:
            import lpips
        except ImportError as error:
            raise WdiffError(
                "LPIPS needs the lpips package: pip install 'wdiff[eval]' (or pip install lpips)"
            ) from error
        with warnings.catch_warnings():  # lpips still uses torchvision's old `pretrained=`
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        state = _state_dict(alexnet_weights, "AlexNet")
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        if not features:
            raise WdiffError(
                f"{alexnet_weights}: holds no torchvision AlexNet 'features.*' weights"
            )
        # lpips splits torchvision's alexnet.features into slices that keep the layer indices
        own = {}
        for name, _ in self.model.net.named_parameters():
            _, index, kind = name.split(".")
            own[name] = features.get(f"{index}.{kind}")
        missing = [name for name, value in own.items() if value is None]
        if missing:
            raise WdiffError(f"{alexnet_weights}: lacks AlexNet weights for {', '.join(missing)}")
        try:
            self.model.net.load_state_dict(own)
        except RuntimeError as error:
            summary = str(error).splitlines()[0].rstrip(":")
            raise WdiffError(f"{alexnet_weights}: not AlexNet weights ({summary})") from error
        self.model = self.model.to(device).eval().requires_grad_(False)
        self.device = device

    def __call__(self, output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            value = self.model(output.to(self.device) * 2 - 1, reference.to(self.device) * 2 - 1)
        return value.flatten().double().cpu()


class InceptionFeatures:
    """Inception-v3 pool features ``(N, 2048)`` of frames in [0, 1], local torchvision weights."""

    def __init__(self, weights: Path, device: torch.device | str = "cpu"):
        from torchvision.models import inception_v3

        model = inception_v3(weights=None, aux_logits=True, init_weights=False)
        try:
            model.load_state_dict(_state_dict(weights, "Inception-v3"))
        except RuntimeError as error:
            summary = str(error).splitlines()[0].rstrip(":")
            raise WdiffError(
                f"{weights}: not torchvision Inception-v3 weights ({summary})"
            ) from error
        model.fc = torch.nn.Identity()
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        self.mean, self.std = mean.to(device), std.to(device)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(frames.to(self.device), size=(299, 299), mode="bilinear")
        with torch.no_grad():
            return self.model((x - self.mean) / self.std).double().cpu()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)`` of feature rows."""
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise WdiffError("FID needs at least 2 frames per video")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)

    def sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
        return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T

    root_a = sqrt_psd(cov_a)
    cross = sqrt_psd(root_a @ cov_b @ root_a)
    value = (mu_a - mu_b).square().sum() + torch.trace(cov_a + cov_b - 2 * cross)
    return float(value.clamp_min(0))


class CLIPScore:
    """CLIP score of frames in [0, 1] against a text, with a local transformers CLIP folder."""

    def __init__(self, folder: Path, prompt: str, device: torch.device | str = "cpu"):
        from transformers import CLIPModel, CLIPProcessor

        folder = Path(folder)
        if not folder.is_dir():
            raise WdiffError(f"{folder}: no such CLIP model folder")
        try:
            self.model = CLIPModel.from_pretrained(folder, local_files_only=True).to(device)
            self.processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as error:
            raise WdiffError(f"{folder}: not a loadable CLIP model folder ({error})") from error
        self.model.eval().requires_grad_(False)
        self.device = device
        text = self.processor(text=[prompt], return_tensors="pt", padding=True)
        with torch.no_grad():
            embedding = self.model.get_text_features(**{k: v.to(device) for k, v in text.items()})
        self.text = F.normalize(_features(embedding), dim=-1)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        images = [(frame.permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy() for frame in frames]
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            embedding = self.model.get_image_features(pixel_values=pixels.to(self.device))
        cosine = F.normalize(_features(embedding), dim=-1) @ self.text.T
        return (100 * cosine.clamp_min(0)).flatten().double().cpu()


def _features(output) -> torch.Tensor:
    """transformers returns a tensor or, in newer versions, an output object with the pooled
    projection."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output
