"""Noise-warping speed: ms per frame of every method at 64², 128², 256² and 1024², C = 4.

Methods: the six warpers and gp-extend (gp with ``extend=True``: no fresh cells). The motion is a
sub-pixel rotation (0.5 deg) plus translation (0.35, -0.2) cells per frame about
the grid's centre, so some cells enter at the edges every frame (fresh noise). For each method
and size: the time of ``init`` (frame 0; for gp it includes evaluating the field on its tiles)
and the median (and mean) time per ``warp`` + ``sample`` over the next frames (steady state).
Then the batched throughput: B videos warped together at 128². On the CPU, and on CUDA when
present.

    python benchmarks/noise_warp.py [--frames 16] [--warmup 1] [--sizes 64 128 256 1024] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from wdiff.flow import Motion
from wdiff.flow.ops import consistency_mask
from wdiff.noise import METHODS, make_warper

VARIANTS = (*METHODS, "gp-extend")  # gp-extend: entering cells continue the field


def motion(size: int, batch: int, device: str) -> Motion:
    ys, xs = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    c = (size - 1) / 2
    angle = math.radians(0.5)
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = torch.stack([xs - c, ys - c]).reshape(2, -1)
    shift = torch.tensor([[0.35], [-0.2]])
    forward = (rot @ points + shift - points).reshape(2, size, size)
    backward = (rot.T @ (points - shift) - points).reshape(2, size, size)
    forward = forward[None].repeat(batch, 1, 1, 1).to(device)
    backward = backward[None].repeat(batch, 1, 1, 1).to(device)
    return Motion(
        backward, consistency_mask(backward, forward), forward, consistency_mask(forward, backward)
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(method: str, size: int, batch: int, frames: int, device: str, warmup: int = 1) -> dict:
    step = motion(size, batch, device)
    warper = make_warper("gp", extend=True) if method == "gp-extend" else make_warper(method)
    sync(device)
    start = time.perf_counter()
    state = warper.init((batch, 4, size, size), 0, device)
    sync(device)
    init = time.perf_counter() - start
    for _ in range(warmup):  # untimed frames: the first ones build gp tiles for entering cells
        state = warper.warp(state, step)
    times = []
    for _ in range(frames):
        sync(device)
        start = time.perf_counter()
        state = warper.warp(state, step)
        warper.sample(state)
        sync(device)
        times.append(time.perf_counter() - start)
    # the median: a shared virtual machine's stalls land on single frames and skew the mean
    per_frame = statistics.median(times)
    return {
        "method": method,
        "size": size,
        "batch": batch,
        "device": device,
        "init_ms": round(init * 1000, 2),
        "ms_per_frame": round(per_frame * 1000, 3),
        "ms_per_frame_mean": round(statistics.mean(times) * 1000, 3),
        "ms_per_frame_per_video": round(per_frame * 1000 / batch, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 1024])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="untimed frames before timing")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/noise_warp.json"))
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for size in args.sizes:
            for method in VARIANTS:
                frames = args.frames if size < 1024 or device != "cpu" else max(2, args.frames // 4)
                row = measure(method, size, 1, frames, device, args.warmup)
                rows.append(row)
                print(
                    f"{device:>4} {size:>5}² {method:>9}  init {row['init_ms']:10.1f} ms   "
                    f"{row['ms_per_frame']:9.2f} ms/frame",
                    flush=True,
                )
        for method in VARIANTS:
            row = measure(method, 128, args.batch, args.frames, device, args.warmup)
            rows.append(row)
            print(
                f"{device:>4}   128² {method:>9}  batch {args.batch}: "
                f"{row['ms_per_frame_per_video']:8.2f} ms/frame/video",
                flush=True,
            )
    result = {
        "benchmark": "noise_warp",
        "machine": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "channels": 4,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
