"""How far self-guidance lowers the demo's warping error while the output stays true to its input.

The demo upscales an 8x-reduced clip (40x22 input). Its report scores warping errors on flows
estimated on that input; those flows are coarse, so even a video that only follows the input
has an error of its own there. This script measures, on the first ``--frames`` frames, with
``wdiff`` run as a user runs it:

- the warping error to the previous frame (``wdiff eval``, flows from the input, the same for
  every row) of the bicubic upsampling of the input (the floor of a faithful output) and of
  ``wdiff upscale`` outputs with ``--guidance`` 0, 1, 3 and 10 (``--preset fast`` unless
  ``--preset`` says otherwise);
- each output's fidelity: PSNR of the output area-reduced 8x against the input (a faithful 8x
  super-resolution reduces back to its input; bicubic upsampling does not exactly);
- the ratios to ``--guidance 0``.

    python benchmarks/guidance_floor.py [--clip builtin:bunny] [--frames 12] [--preset fast]
        [--guidance 0 1 3 10] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from wdiff.video import VideoWriter, open_video

SCALE = 8


def wdiff(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "wdiff", *args], check=True)


def fidelity_psnr(output: Path, low: Path) -> float:
    """PSNR (RGB in [0, 1]) of the output area-reduced to the input's size, against the input."""
    errors = []
    for out, small in zip(open_video(output).frames(), open_video(low).frames(), strict=True):
        reduced = cv2.resize(
            out.astype(np.float64) / 255, small.shape[1::-1], interpolation=cv2.INTER_AREA
        )
        errors.append(np.mean((reduced - small.astype(np.float64) / 255) ** 2))
    return float(10 * np.log10(1 / np.mean(errors)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="builtin:bunny", help="the clip reduced 8x for input")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 3.0, 10.0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/guidance_floor.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        whole = work / "low-whole.mp4"
        wdiff("degrade", args.clip, "--scale", str(SCALE), "-o", str(whole), "--quiet")
        source = open_video(whole)
        low, bicubic = work / "low.mp4", work / "bicubic.mp4"
        size = (source.info.width * SCALE, source.info.height * SCALE)
        with (
            VideoWriter(low, source.info.fps, crf=0) as small,
            VideoWriter(bicubic, source.info.fps, crf=0) as large,
        ):
            for frame in source.frames(0, args.frames):
                small.write(frame)
                large.write(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
        videos = {"bicubic upsampling": bicubic}
        for strength in args.guidance:
            output = work / f"guidance-{strength:g}.mp4"
            wdiff(
                "upscale", str(low), "--scale", str(SCALE), "--preset", args.preset,
                "--guidance", f"{strength:g}", "-o", str(output), "--quiet", "--no-cache",
            )  # fmt: skip
            videos[f"--guidance {strength:g}"] = output
        scores = work / "eval.json"
        wdiff("eval", *map(str, videos.values()), "--flow-from", str(low), "-o", str(scores))
        scored = {v["path"]: v["summary"] for v in json.loads(scores.read_text())["videos"]}
        rows = {}
        for name, path in videos.items():
            summary = scored[str(path)]
            rows[name] = {
                "warping_error_previous": summary["warp_prev"]["mean"],
                "warping_error_first": summary["warp_first"]["mean"],
                "fidelity_psnr": fidelity_psnr(path, low),
            }
    unguided = rows.get("--guidance 0", {}).get("warping_error_previous")
    for row in rows.values():
        if unguided:
            row["lower_than_guidance_0"] = unguided / row["warping_error_previous"]
    result = {
        "benchmark": "guidance_floor",
        "clip": f"{args.clip} reduced {SCALE}x, first {args.frames} frames",
        "preset": args.preset,
        "units": "RGB in [0, 1]; warping errors are mean squares on flows from the input",
        "rows": rows,
    }
    print(f"{'':22s} {'warp prev':>10s} {'x lower':>8s} {'fidelity PSNR':>14s}")
    for name, row in rows.items():
        ratio = row.get("lower_than_guidance_0")
        shown = f"{ratio:8.2f}" if ratio else f"{'':8s}"
        print(
            f"{name:22s} {row['warping_error_previous']:10.3e} {shown} {row['fidelity_psnr']:14.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
