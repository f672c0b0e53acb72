"""Optical-flow speed: frames per second of each estimator at 320x180 and 1280x720.

Two figures per estimator and size: ``estimator_fps`` (one flow per frame pair, one direction)
and ``pipeline_fps`` (what `wdiff flow` does per frame: forward and backward flow plus the
consistency masks, cache off). Frames are the bundled Big Buck Bunny clip, resized. RAFT runs
with randomly initialised weights (its speed does not depend on them): on the CPU at 320x180,
and on CUDA at both sizes when a GPU is present.

    python benchmarks/flow.py [--frames 12] [--out benchmarks/results/flow.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from wdiff.flow import estimate_video_flows, make_estimator
from wdiff.flow.estimators import RaftFlow
from wdiff.video import FrameFolderReader, open_video

SIZES = {"320x180": (320, 180), "1280x720": (1280, 720)}


def clip(size: tuple[int, int], frames: int) -> np.ndarray:
    source = open_video("builtin:bunny")
    return np.stack(
        [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in source.frames(count=frames)]
    )


def random_raft(device: str) -> RaftFlow:
    from torchvision.models.optical_flow import raft_large

    estimator = RaftFlow.__new__(RaftFlow)
    estimator.device = torch.device(device)
    estimator.model = raft_large(weights=None).eval().to(device)
    estimator.iterations = 12
    estimator.key = {"method": "raft", "random": True}
    return estimator


def time_estimator(estimator, frames: np.ndarray, device: str) -> float:
    estimator(frames[:1], frames[1:2])  # warm-up
    sync(device)
    start = time.perf_counter()
    for index in range(len(frames) - 1):
        estimator(frames[index : index + 1], frames[index + 1 : index + 2])
    sync(device)
    return (len(frames) - 1) / (time.perf_counter() - start)


def time_pipeline(estimator, frames: np.ndarray, folder: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    reader = FrameFolderReader(folder)
    start = time.perf_counter()
    estimate_video_flows(reader, estimator, cache=None)
    return (len(frames) - 1) / (time.perf_counter() - start)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/flow.json"))
    args = parser.parse_args()
    import tempfile

    rows = []
    runs = [("dis", m, "cpu") for m in ("fast", "medium", "fine")] + [("farneback", "", "cpu")]
    runs += [("raft", "large", "cpu")]
    if torch.cuda.is_available():
        runs += [("raft", "large", "cuda")]
    for label, (width, height) in SIZES.items():
        frames = clip((width, height), args.frames)
        for method, variant, device in runs:
            if method == "raft" and device == "cpu" and width > 320:
                continue  # minutes per frame: not a setting anyone uses
            if method == "raft":
                estimator = random_raft(device)
            else:
                estimator = make_estimator(method, dis_preset=variant or "fine")
            count = frames if method != "raft" or device != "cpu" else frames[:4]
            fps = time_estimator(estimator, count, device)
            with tempfile.TemporaryDirectory() as folder:
                pipeline = time_pipeline(estimator, count, Path(folder) / "f")
            row = {
                "method": method,
                "variant": variant,
                "device": device,
                "size": label,
                "estimator_fps": round(fps, 2),
                "pipeline_fps": round(pipeline, 2),
            }
            rows.append(row)
            print(
                f"{label:>9} {method:>9} {variant:>6} {device:>4}  "
                f"estimator {fps:8.2f} fps   pipeline {pipeline:8.2f} fps",
                flush=True,
            )
    result = {
        "benchmark": "flow",
        "machine": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "frames": args.frames,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
