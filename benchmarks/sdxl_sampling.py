"""Guided sampling at SDXL's size: seconds per frame and peak memory of Warped Diffusion's frame
loop (``diffusion.VideoSampler``: GP noise warped along a flow, Euler steps, full or cheap
equivariance self-guidance) over a randomly initialised UNet with SDXL's full configuration
(2.6 B parameters, 128x128 latents = 1024² frames, 8 input channels as an SR fine-tune has),
in bf16. No weights are needed: the cost of a step does not depend on them.

    python benchmarks/sdxl_sampling.py [--device cuda] [--frames 3] [--steps 10] [--tiny]

``--tiny`` runs a few-channel UNet of the same layout at 32x32 latents (checks the script on a
CPU). Writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from wdiff.diffusion import GuidanceSettings, karras_sigmas
from wdiff.diffusion.video import VideoSampler
from wdiff.flow import Motion
from wdiff.noise import make_warper

FULL = {  # stabilityai/stable-diffusion-xl-base-1.0 unet/config.json, 8 input channels
    "block_out_channels": (320, 640, 1280),
    "layers_per_block": 2,
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "projection_class_embeddings_input_dim": 2816,
    "addition_time_embed_dim": 256,
    "sample_size": 128,
}
TINY = {
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "transformer_layers_per_block": (1, 1, 1),
    "attention_head_dim": (2, 4, 4),
    "cross_attention_dim": 64,
    "projection_class_embeddings_input_dim": 32 + 6 * 8,
    "addition_time_embed_dim": 8,
    "sample_size": 32,
}


class UNetDenoiser:
    """The ``Denoiser`` protocol over a bare SDXL-shaped UNet: eps prediction with
    ``x / sqrt(sigma^2 + 1)`` in and ``x0 = x - sigma eps`` out, timestep = 1000 sigma / 20
    (a stand-in for the discrete schedule; the cost is the same), zero text embeddings."""

    space, scale, channels, sigma_data, takes_prompt = "latent", 8, 4, 1.0, False

    def __init__(self, unet, config: dict, device: torch.device, dtype: torch.dtype):
        self.unet, self.dtype, self.device = unet, dtype, device
        width = config["cross_attention_dim"]
        pooled = (
            config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        )
        self.context = torch.zeros(1, 77, width, device=device, dtype=dtype)
        self.added = {
            "text_embeds": torch.zeros(1, pooled, device=device, dtype=dtype),
            "time_ids": torch.zeros(1, 6, device=device, dtype=dtype),
        }

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scaled = (x / (sigma**2 + 1).sqrt()).to(self.dtype)
        inputs = torch.cat([scaled, cond.to(self.dtype)], dim=1)
        timestep = (1000 * sigma / 20).clamp(max=999).reshape(1).to(self.device)
        eps = self.unet(
            inputs, timestep, encoder_hidden_states=self.context, added_cond_kwargs=self.added
        ).sample
        return x - sigma * eps.float()


def build_unet(config: dict, device: torch.device, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        in_channels=8,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        use_linear_projection=True,
        addition_embed_type="text_time",
        norm_num_groups=32,
        **config,
    )
    return unet.to(device=device, dtype=dtype).eval().requires_grad_(False)


def shift(size: int, device: torch.device) -> Motion:
    forward = torch.zeros(1, 2, size, size, device=device)
    forward[:, 0] = 0.5  # half a latent cell to the right per frame
    valid = torch.ones(1, 1, size, size, dtype=torch.bool, device=device)
    return Motion(-forward, valid, forward, valid)


def run(args) -> dict:
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    config = TINY if args.tiny else FULL
    began = time.perf_counter()
    unet = build_unet(config, device, dtype)
    build_seconds = time.perf_counter() - began
    parameters = sum(p.numel() for p in unet.parameters())
    size = config["sample_size"]
    denoiser = UNetDenoiser(unet, config, device, dtype)
    guidance = GuidanceSettings(strength=1.0, mode=args.mode)
    shape = (1, 4, size, size)
    sampler = VideoSampler(
        denoiser,
        make_warper("gp"),
        shape,
        karras_sigmas(args.steps, 0.03, 14.6),
        0,
        guidance,
        "euler",
        device,
    )
    cond = torch.zeros(shape, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for index in range(args.frames):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        sampler.step(cond, None if index == 0 else shift(size, device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - began)
        print(f"frame {index}: {seconds[-1]:.2f} s", flush=True)
    guided = seconds[1:] or seconds
    return {
        "benchmark": "sdxl_sampling",
        "unet": "tiny" if args.tiny else "sdxl-full",
        "parameters": parameters,
        "latent": [size, size],
        "dtype": args.dtype,
        "guidance_mode": args.mode,
        "steps": args.steps,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "machine": platform.processor() or platform.machine(),
        "build_seconds": round(build_seconds, 2),
        "seconds_frame0_unguided": round(seconds[0], 3),
        "seconds_per_guided_frame": round(sum(guided) / len(guided), 3),
        "seconds_per_guided_step": round(sum(guided) / len(guided) / args.steps, 4),
        "cuda_peak_gib": (
            round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            if device.type == "cuda"
            else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--mode", choices=("full", "cheap"), default="full")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sdxl_sampling.json"))
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
