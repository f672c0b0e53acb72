"""Peak memory as the clip grows: `wdiff upscale --steps 1` and `wdiff flow` alone, each a
subprocess run as a user runs it, on clips of ``--frames`` frames (default 24 and 240) upscaled
``--scale`` times to ``--size`` (default 640x360 output, so 320x180 in). Memory must not grow
with the clip: the longest clip's peak is held to within 10% of the shortest's.

The input is the bundled Big Buck Bunny clip resized to the input size and played forward then
backward as often as needed (no cut, so the flows are ordinary). Peaks are each child's maximum
resident set size (``os.wait4``; the upscale report's ``peak_memory.cpu_max_rss_gib`` agrees),
with a cold flow cache in a temporary folder, as on a first run. ``whole_flows_mb`` is what
holding the clip's flows and validity masks whole would take (what wdiff did before #18).

    python benchmarks/memory.py [--frames 24 240] [--size 640x360] [--scale 2] [--device cpu]
        [--out benchmarks/results/memory.json]
    python benchmarks/memory.py --long   # 24 and 1,000 frames at 1920x1080 output: hours on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from wdiff.video import VideoWriter, open_video

LIMIT = 1.10  # the longest clip's peak over the shortest's


def frames(size: tuple[int, int], count: int) -> Iterator[np.ndarray]:
    """``count`` frames of the bundled clip at ``size`` (width, height), forward then back."""
    source = open_video("builtin:bunny")
    # bicubic when enlarging (the --long input): area resampling would make blocks
    method = cv2.INTER_CUBIC if size[0] > source.info.width else cv2.INTER_AREA
    resized = [cv2.resize(f, size, interpolation=method) for f in source.frames()]
    cycle = resized + resized[-2:0:-1]
    for index in range(count):
        yield cycle[index % len(cycle)]


def make_clip(path: Path, size: tuple[int, int], count: int) -> Path:
    with VideoWriter(path, open_video("builtin:bunny").info.fps, crf=0) as writer:
        for frame in frames(size, count):
            writer.write(frame)
    return path


def peak_rss_gib(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``python -m wdiff ARGS``; its peak resident set (GiB) and wall time (s)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "wdiff", *args], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"wdiff {' '.join(args)}: exit code {process.returncode}")
    return usage.ru_maxrss / 2**20, time.perf_counter() - start  # KiB -> GiB


def measure(work: Path, count: int, size: tuple[int, int], args: argparse.Namespace) -> dict:
    """Peaks of `wdiff flow` and `wdiff upscale --steps 1` on a ``count``-frame clip."""
    scale = args.scale
    low = (size[0] // scale, size[1] // scale)
    clip = make_clip(work / f"in{count}.mp4", low, count)
    env = {**os.environ, "WDIFF_CACHE_DIR": str(work / f"cache{count}")}
    common = ["--device", args.device, "--quiet"]
    flow_peak, flow_seconds = peak_rss_gib(
        [*common, "flow", str(clip), "-o", str(work / f"f{count}.safetensors"), "--no-cache"], env
    )
    output = work / f"out{count}.mp4"
    upscale = ["upscale", str(clip), "--scale", str(scale), "--steps", "1", "--tile", args.tile]
    upscale += ["--noise", args.noise]
    peak, seconds = peak_rss_gib([*common, *upscale, "-o", str(output)], env)
    report = json.loads(output.with_suffix(".report.json").read_text())
    row = {
        "frames": count,
        "input": f"{low[0]}x{low[1]}",
        "output": f"{size[0]}x{size[1]}",
        "upscale_peak_rss_gib": round(peak, 3),
        "upscale_report_peak_rss_gib": report["peak_memory"]["cpu_max_rss_gib"],
        "upscale_seconds": round(seconds, 1),
        "flow_peak_rss_gib": round(flow_peak, 3),
        "flow_seconds": round(flow_seconds, 1),
        "whole_flows_mb": round((count - 1) * low[0] * low[1] * (2 * 2 * 4 + 2) / 1e6, 1),
    }
    if "cuda_max_allocated_gib" in report["peak_memory"]:
        row["upscale_cuda_max_allocated_gib"] = report["peak_memory"]["cuda_max_allocated_gib"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[24, 240])
    parser.add_argument("--size", default="640x360", help="output WIDTHxHEIGHT")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--device", default="cpu", help="wdiff's --device (peaks are CPU RSS)")
    parser.add_argument("--noise", default="gp", help="upscale's --noise")
    parser.add_argument("--long", action="store_true", help="1,000 frames at 1920x1080 output")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.long:
        args.frames, args.size = [args.frames[0], 1000], "1920x1080"
    size = tuple(int(side) for side in args.size.split("x"))
    out = args.out or Path(f"benchmarks/results/memory{'_long' if args.long else ''}.json")
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(Path(folder), count, size, args) for count in args.frames]
    shortest, longest = rows[0], rows[-1]
    ratios = {
        key: round(longest[f"{key}_peak_rss_gib"] / shortest[f"{key}_peak_rss_gib"], 3)
        for key in ("upscale", "flow")
    }
    result = {
        "benchmark": "memory",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": f"wdiff --device {args.device} upscale --scale {args.scale} --steps 1 "
        f"--tile {args.tile} --noise {args.noise}",
        "rows": rows,
        "longest_over_shortest": ratios,
        "within_10_percent": ratios["upscale"] <= LIMIT,
    }
    print(
        f"{'frames':>7s} {'in':>10s} {'upscale GiB':>12s} {'flow GiB':>9s} {'whole flows MB':>15s}"
    )
    for row in rows:
        print(
            f"{row['frames']:7d} {row['input']:>10s} {row['upscale_peak_rss_gib']:12.3f} "
            f"{row['flow_peak_rss_gib']:9.3f} {row['whole_flows_mb']:15.1f}"
        )
    print(f"longest / shortest: upscale {ratios['upscale']:.3f}, flow {ratios['flow']:.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not result["within_10_percent"]:
        raise SystemExit(f"peak memory grew {ratios['upscale']:.2f}x with the clip's length")


if __name__ == "__main__":
    main()
