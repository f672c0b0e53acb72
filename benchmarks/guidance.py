"""Cost and effect of equivariance self-guidance.

For each guidance mode (none = lambda 0, cheap, full): seconds per sampling step on frames >= 1,
the cost of a step relative to an unguided one (the paper: 4.32 vs 1.62 it/s on an A100, 2.7x),
and the warping error of the outputs (pixels in [-1, 1], valid pixels, Lai et al.) with respect
to the previous frame and to frame 0.

CPU: the built-in SR model (shipped weights when present, else random ones: say which) on an 8x
super-resolution of a photograph moving by a sub-pixel translation, true flow.
CUDA (when present): an SDXL-shaped UNet (diffusers UNet2DConditionModel with SDXL's config,
random weights, bf16) on a 128x128 latent (a 1024x1024 frame), the same protocol.

    python benchmarks/guidance.py [--frames 4] [--steps 25] [--size 128] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from wdiff.diffusion import GuidanceSettings, sample_video
from wdiff.flow import Motion
from wdiff.flow.ops import consistency_mask, upscale_flow
from wdiff.metrics import warping_error
from wdiff.noise import make_warper

MODES = {
    "none": GuidanceSettings(strength=0.0),
    "cheap": GuidanceSettings(strength=1.0, mode="cheap"),
    "full": GuidanceSettings(strength=1.0, mode="full"),
}


def translation_motion(flow: torch.Tensor, grid: int = 1) -> Motion:
    """Motion of a clip whose every pair has the forward flow ``flow`` (2, H, W) (pixels)."""
    forward = flow[None]
    backward = -forward  # a pure translation
    valid_forward = consistency_mask(forward, backward)
    valid_backward = consistency_mask(backward, forward)
    return Motion(backward, valid_backward, forward, valid_forward).to_grid(grid)


def run_modes(denoiser, conds, motion: Motion, shape, steps: int, device) -> dict:
    sigmas = denoiser.sigmas(steps)
    rows = {}
    for name, settings in MODES.items():
        inputs = [(cond, None if i == 0 else motion) for i, cond in enumerate(conds)]
        outputs, times = [], []
        began = time.perf_counter()
        for result in sample_video(
            denoiser, make_warper("gp"), inputs, shape, sigmas, 0, settings, device=device
        ):
            if device.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            times.append(now - began)
            began = now
            outputs.append(denoiser.decode(result.x0).float())
        per_step = sum(times[1:]) / (len(times) - 1) / steps
        flow, valid = upscale_flow(motion.forward, motion.valid_forward, denoiser.scale)
        previous = [
            float(warping_error(outputs[j], outputs[j - 1], flow, valid))
            for j in range(1, len(outputs))
        ]
        rows[name] = {
            "seconds_per_step": per_step,
            "warping_error_previous": previous,
            "mean_warping_error_previous": sum(previous) / len(previous),
        }
        print(
            f"  {name:6s} {per_step * 1000:9.1f} ms/step   warping error (previous) "
            f"{rows[name]['mean_warping_error_previous']:.2e}"
        )
    base = rows["none"]["seconds_per_step"]
    for name in rows:
        rows[name]["cost_vs_unguided"] = rows[name]["seconds_per_step"] / base
    return rows


def cpu_builtin(frames: int, steps: int, size: int) -> dict:
    import skimage.data

    from wdiff.models.builtin import (
        ARCHITECTURES,
        BuiltinConfig,
        BuiltinDenoiser,
        BuiltinNet,
        builtin_path,
    )
    from wdiff.synthetic import motion as affine
    from wdiff.synthetic import moved_photo
    from wdiff.tasks import SuperResolution

    path = builtin_path("sr")
    if path.is_file():
        net, _ = BuiltinNet.load(path)
        weights = "shipped builtin:sr"
    else:
        torch.manual_seed(0)
        net = BuiltinNet(BuiltinConfig(task="sr", **ARCHITECTURES["builtin-small"])).eval()
        weights = "random (no shipped builtin:sr)"
    denoiser = BuiltinDenoiser(net)
    photo = skimage.data.astronaut()
    clip, flow = moved_photo(photo, affine("translation", 1.7, (256.0, 256.0)), frames, size)
    truth = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 127.5 - 1
    task = SuperResolution(8)
    conds = [denoiser.condition(task, task.degrade(frame[None])) for frame in truth]
    print(f"CPU, built-in SR model ({weights}), {size}x{size} output, 8x, {steps} steps:")
    rows = run_modes(
        denoiser, conds, translation_motion(flow), (1, 3, size, size), steps, torch.device("cpu")
    )
    return {
        "model": "builtin-small sr",
        "weights": weights,
        "size": size,
        "steps": steps,
        "frames": frames,
        "threads": torch.get_num_threads(),
        "modes": rows,
    }


class SDXLShapedDenoiser:
    """eps-prediction latent UNet with SDXL's shape, behind the Denoiser protocol (benchmark)."""

    space, scale, channels, sigma_data = "latent", 8, 4, 1.0

    def __init__(self, device):
        from diffusers import EulerDiscreteScheduler, UNet2DConditionModel

        self.unet = (
            UNet2DConditionModel(
                sample_size=128,
                in_channels=4,
                out_channels=4,
                layers_per_block=2,
                block_out_channels=(320, 640, 1280),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                transformer_layers_per_block=(1, 2, 10),
                attention_head_dim=(5, 10, 20),
                cross_attention_dim=2048,
                use_linear_projection=True,
                addition_embed_type="text_time",
                addition_time_embed_dim=256,
                projection_class_embeddings_input_dim=2816,
            )
            .to(device, torch.bfloat16)
            .requires_grad_(False)
        )
        self.scheduler = EulerDiscreteScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            timestep_spacing="leading",
            steps_offset=1,
        )
        self.dtype = torch.bfloat16
        self.device = device
        self.text = torch.randn(1, 77, 2048, device=device, dtype=torch.bfloat16)
        self.added = {
            "text_embeds": torch.randn(1, 1280, device=device, dtype=torch.bfloat16),
            "time_ids": torch.tensor(
                [[1024, 1024, 0, 0, 1024, 1024]], device=device, dtype=torch.bfloat16
            ),
        }
        alphas = self.scheduler.alphas_cumprod.to(torch.float64)
        self.log_sigmas = ((1 - alphas) / alphas).sqrt().log().float().to(device)

    def sigmas(self, steps):
        from wdiff.diffusion import discrete_sigmas

        return discrete_sigmas(self.scheduler, steps)

    def encode(self, frames):
        return frames

    def decode(self, x):
        return x

    def __call__(self, x, sigma, cond):
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32)
        timestep = torch.searchsorted(self.log_sigmas, sigma.log().reshape(1)).clamp(0, 999)
        scaled = (x / (sigma**2 + 1).sqrt()).to(self.dtype)
        eps = self.unet(
            scaled, timestep, encoder_hidden_states=self.text, added_cond_kwargs=self.added
        ).sample
        return x - sigma * eps.float()


def cuda_sdxl(frames: int, steps: int) -> dict:
    device = torch.device("cuda")
    denoiser = SDXLShapedDenoiser(device)
    flow = torch.zeros(2, 1024, 1024)
    flow[0], flow[1] = 13.6, -6.1  # pixels per frame: 1.7 and -0.76 latent cells
    motion = translation_motion(flow, grid=8)
    motion = Motion(*(t.to(device) for t in motion.tensors()))
    print(
        f"CUDA ({torch.cuda.get_device_name()}), SDXL-shaped UNet, random weights, bf16, "
        f"128x128 latent, {steps} steps:"
    )
    torch.cuda.reset_peak_memory_stats()
    rows = run_modes(denoiser, [None] * frames, motion, (1, 4, 128, 128), steps, device)
    return {
        "model": "SDXL-shaped UNet2DConditionModel (random weights, bf16)",
        "latent": 128,
        "steps": steps,
        "frames": frames,
        "device": torch.cuda.get_device_name(),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "modes": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/guidance.json"))
    args = parser.parse_args()
    result = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpu": cpu_builtin(args.frames, args.steps, args.size),
    }
    if torch.cuda.is_available():
        result["cuda"] = cuda_sdxl(args.frames, args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
