"""The built-in pixel-space models: compact diffusers ``UNet2DModel``s with EDM preconditioning,
conditioned by channel concatenation, trained by ``wdiff finetune`` and shipped as safetensors.

The network sees 2x2 pixel patches folded into channels (pixel unshuffle), which makes it four
times cheaper at the same width; equivariance is left to the guidance.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from wdiff.diffusion.schedules import karras_sigmas
from wdiff.errors import WdiffError
from wdiff.tasks import Inpainting, SuperResolution

WEIGHTS_DIR = Path(__file__).parent / "weights"
TASKS = ("sr", "inpaint")
FIRST_LEVEL_TOLERANCE = 1e-4  # sigmas this close below sigma_max are the first level
COND_CHANNELS = {"sr": 3, "inpaint": 4}


@dataclass
class BuiltinConfig:
    """The architecture and preconditioning of a built-in model."""

    task: str = "sr"
    patch: int = 2
    block_out_channels: tuple[int, ...] = (32, 64, 96)
    layers_per_block: int = 1
    norm_num_groups: int = 16
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    noise: str = "gp"
    residual: bool = False
    p_mean: float = -1.2
    p_std: float = 1.2
    p_top: float = 0.0  # share of training items at sigma_max, where a sample starts

    @property
    def multiple(self) -> int:
        """Frame sizes the network takes: multiples of this (others are padded)."""
        return self.patch * 2 ** (len(self.block_out_channels) - 1)


# SR denoises the residual over the bicubic upsampling, D = up + D_r(x - up): its posterior mean
# at high noise is the upsampling itself rather than something the network must learn, and the
# residual's spread (RMS 0.05 / 0.09 / 0.14 at x2 / x4 / x8 on the training crops) sets
# sigma_data, the training noise levels (ln sigma centred 1.6 lower) and sigma_max.
TASK_DEFAULTS = {
    "sr": {"residual": True, "sigma_data": 0.1, "p_mean": -2.8, "sigma_max": 20.0},
    "inpaint": {},
}

ARCHITECTURES = {
    "builtin-small": {},
    # one level more: a receptive field that spans the holes of 128 px inpainting crops
    "builtin-deep": {"block_out_channels": (32, 64, 96, 128)},
    "builtin-tiny": {"block_out_channels": (16, 32), "norm_num_groups": 8},  # tests, smoke runs
}


class BuiltinNet(torch.nn.Module):
    """``D(x, sigma, cond) = c_skip x + c_out F(c_in x, cond, c_noise)`` (Karras et al. 2022).

    ``first``, when set, is a second network of its own for the first noise level (sigma_max,
    where a sample starts and all that ``--steps 1`` sees; eDiff-I's expert denoisers, with one
    expert): it denoises the items at sigma_max, this one every other level."""

    def __init__(self, config: BuiltinConfig, first_config: BuiltinConfig | None = None):
        super().__init__()
        from diffusers import UNet2DModel

        self.config = config
        self.first = BuiltinNet(first_config) if first_config is not None else None
        fold = config.patch**2
        levels = len(config.block_out_channels)
        self.unet = UNet2DModel(
            in_channels=(3 + COND_CHANNELS[config.task]) * fold,
            out_channels=3 * fold,
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels,
            norm_num_groups=config.norm_num_groups,
        )

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, 3, H, W)`` noisy, sigma scalar or ``(B,)``, cond ``(B, k, H, W)``; H and W
        multiples of ``config.multiple``. A residual model denoises ``x - cond[:, :3]``."""
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).reshape(-1)
        sigma = sigma.expand(x.shape[0])
        if self.first is not None:
            at_first = sigma >= self.config.sigma_max * (1 - FIRST_LEVEL_TOLERANCE)
            if at_first.all():
                return self.first(x, sigma, cond)
            if at_first.any():
                first, other = self.first(x, sigma, cond), self._denoise(x, sigma, cond)
                return torch.where(at_first.view(-1, 1, 1, 1), first, other)
        return self._denoise(x, sigma, cond)

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """This network's own output; ``sigma`` ``(B,)`` float32."""
        sd = self.config.sigma_data
        base = cond[:, :3].to(x.dtype) if self.config.residual else None
        if base is not None:
            x = x - base
        scale = sigma.view(-1, 1, 1, 1)
        c_skip = sd**2 / (scale**2 + sd**2)
        c_out = scale * sd / (scale**2 + sd**2).sqrt()
        c_in = 1 / (scale**2 + sd**2).sqrt()
        inputs = torch.cat([c_in * x, cond.to(x.dtype)], dim=1)
        patch = self.config.patch
        folded = F.pixel_unshuffle(inputs, patch) if patch > 1 else inputs
        out = self.unet(folded, sigma.log() / 4).sample
        out = F.pixel_shuffle(out, patch) if patch > 1 else out
        denoised = c_skip * x + c_out * out
        return denoised if base is None else base + denoised

    def save(self, path: Path, metadata: dict | None = None) -> None:
        from safetensors.torch import save_file

        info = {"config": json.dumps(asdict(self.config))} | {
            key: str(value) for key, value in (metadata or {}).items()
        }
        if self.first is not None:
            info["first_config"] = json.dumps(asdict(self.first.config))
        state = {key: value.contiguous() for key, value in self.state_dict().items()}
        save_file(state, str(path), metadata=info)

    @classmethod
    def load(cls, path: Path) -> tuple[BuiltinNet, dict]:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        advice = "give a model written by `wdiff finetune`, or builtin"
        try:
            with safe_open(str(path), "pt") as handle:
                metadata = handle.metadata() or {}
        except (SafetensorError, OSError) as error:
            raise WdiffError(
                f"{path}: not a readable safetensors file ({error}); {advice}"
            ) from error
        if "config" not in metadata:
            raise WdiffError(f"{path}: not a wdiff built-in model (no config in its metadata)")
        try:
            parts = ("config", "first_config")
            net = cls(*[_config(metadata[key]) for key in parts if key in metadata])
        except (ValueError, TypeError, KeyError) as error:  # JSON, unknown or missing fields
            raise WdiffError(f"{path}: its model config is damaged ({error}); {advice}") from error
        try:
            net.load_state_dict(load_file(str(path)))
        except (RuntimeError, SafetensorError) as error:  # missing, unexpected or misshapen
            summary = str(error).splitlines()[0].rstrip(":")
            raise WdiffError(
                f"{path}: its weights do not fit its config ({summary}); {advice}"
            ) from error
        return net.eval().requires_grad_(False), metadata


def _config(text: str) -> BuiltinConfig:
    config = json.loads(text)
    config["block_out_channels"] = tuple(config["block_out_channels"])
    return BuiltinConfig(**config)


class BuiltinDenoiser:
    """A built-in model behind the Denoiser protocol (pixel space, [-1, 1])."""

    space = "pixel"
    scale = 1
    channels = 3
    max_tile = None  # convolutional, trained on crops: any frame size (memory permitting)
    takes_prompt = False

    def __init__(self, net: BuiltinNet, device: torch.device | str = "cpu"):
        self.net = net.to(device)
        self.config = net.config
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.sigma_data = net.config.sigma_data

    @property
    def task(self) -> str:
        return self.config.task

    def sigmas(self, steps: int) -> torch.Tensor:
        return karras_sigmas(steps, self.config.sigma_min, self.config.sigma_max)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return frames

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def condition(
        self, task, frame: torch.Tensor, mask: torch.Tensor | None = None, prompt: str | None = None
    ) -> torch.Tensor:
        """SR: ``frame`` is the low-res frame, the condition its bicubic upsampling. Inpainting:
        the frame with the hole set to 0, and the mask as -1 (known) / +1 (fill)."""
        frame = frame.to(self.device, torch.float32)
        if isinstance(task, SuperResolution):
            if self.task != "sr":
                raise WdiffError("this built-in model inpaints; use builtin:sr to upscale")
            return task.upsample(frame)
        if isinstance(task, Inpainting):
            if self.task != "inpaint":
                raise WdiffError("this built-in model upscales; use builtin:inpaint to inpaint")
            mask = mask.to(self.device)
            return torch.cat([task.degrade(frame, mask), mask.float() * 2 - 1], dim=1)
        raise WdiffError(f"built-in models know the tasks sr and inpaint, not {task!r}")

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = self.config.multiple
        pad = (0, (-width) % multiple, 0, (-height) % multiple)
        if any(pad):
            x_in = F.pad(x, pad, mode="replicate")
            cond = F.pad(cond, pad, mode="replicate")
        else:
            x_in = x
        out = self.net(x_in, sigma, cond)
        return out[..., :height, :width]


def builtin_path(task: str) -> Path:
    return WEIGHTS_DIR / f"{task}.safetensors"


def model_file(name: str) -> Path:
    """The safetensors file ``name`` gives: ``builtin:TASK``, a run folder or a model file."""
    if name.startswith("builtin:"):
        task = name.split(":", 1)[1]
        if task not in TASKS:
            raise WdiffError(f"{name}: the built-in models are builtin:sr and builtin:inpaint")
        return builtin_path(task)
    path = Path(name)
    if path.is_dir() and (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    return path


def load_builtin(task: str, device: torch.device | str = "cpu") -> BuiltinDenoiser:
    """The shipped model for ``task`` ("sr" or "inpaint")."""
    if task not in TASKS:
        raise WdiffError(f"builtin:{task}: the built-in models are builtin:sr and builtin:inpaint")
    path = builtin_path(task)
    if not path.is_file():
        raise WdiffError(
            f"{path}: the built-in {task} model is missing from this install; "
            "rebuild it with `make train-builtin`"
        )
    net, _ = BuiltinNet.load(path)
    return BuiltinDenoiser(net, device)
