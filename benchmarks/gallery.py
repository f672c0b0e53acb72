"""Side-by-side strips for docs/gallery.md, made with ``wdiff`` run as a user runs it.

Each strip is a PNG under ``--out-dir`` (docs/gallery/), one row per image, each panel labelled
with its PSNR (dB, RGB) against the original, on the pixels the panel shows:

- super-resolution, x8 and x4: bicubic upsampling of the low-res input | each ``--model-sr`` |
  each one's one-step estimate (``--steps 1``; ``--no-one-step`` leaves them out) | original.
  The outputs are ``wdiff upscale``; bicubic is ``SuperResolution.upsample``, the image the
  models are conditioned on;
- inpainting: the masked input (hole at mid-grey) | each ``--model-inpaint`` | original, PSNR
  inside the hole (and outside it, "rest", where an output does not keep the known pixels);
  the outputs are ``wdiff inpaint``.

On two kinds of input:
- the bundled clip (``--clip``, builtin:bunny), frames ``--frames`` (0, 25, 49) of runs over all
  frames up to the last one, with ``--clip-preset`` (fast, as ``make demo``): ``wdiff degrade``
  then ``wdiff upscale``, the panels ``--clip-crop`` columns of the frames (to keep the PNGs
  small); inpainting a box fixed on screen (``--clip-box``), shown with ``--clip-margin`` pixels
  around it;
- held-out photographs (``--data photos``, which training never sees): the 128-pixel centre
  crops that ``benchmarks/models_table.py --data photos`` measures (its ``crops``), of which
  ``--photos`` picks some by index; each crop reduced as ``wdiff degrade`` does
  (``SuperResolution.degrade``, in this process) and restored as a still (no flow, no
  guidance) with ``--steps`` Euler steps; inpainting masks are models_table's first draw of
  seeded free-form strokes and boxes.

``wdiff`` runs in children with ``OMP_NUM_THREADS=--threads`` (1): on a 2-core CPU that is
busy with other work, torch's default of one thread per core made the bundled clip's x8 run
4.4x slower here (10.5 against 2.4 s a frame).

    WDIFF_PHOTO_ROOT=~/.cache/wdiff/photo-packages python benchmarks/gallery.py \
        [--model-sr builtin photos=runs/sr-gp-photos] [--model-inpaint builtin] \
        [--frames 0 25 49] [--photos 2 7 10 11] [--out-dir docs/gallery]
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
from pathlib import Path

import numpy as np
import torch
from models_table import crops, psnr
from PIL import Image, ImageDraw, ImageFont

from wdiff.datasets import photo_files, random_masks
from wdiff.noise.base import generator
from wdiff.tasks import Inpainting, SuperResolution
from wdiff.video import frames_to_tensor, open_video, tensor_to_frames

SCALES = (8, 4)
GAP = 2  # white pixels between panels and rows
FONT_SIZE = 11


class Runner:
    """``python -m wdiff ...`` in a child, with a fixed thread count and seed."""

    def __init__(self, threads: int, seed: int) -> None:
        self.env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.seed = seed
        self.calls = 0

    def __call__(self, *args: str | Path, restore: bool = False) -> None:
        extra = ["--seed", str(self.seed), "--no-cache"] if restore else []
        command = [sys.executable, "-m", "wdiff", *map(str, args), "--quiet", *extra]
        subprocess.run(command, check=True, env=self.env)
        self.calls += 1


def model_spec(spec: str) -> tuple[str, str]:
    """``NAME=PATH``, ``builtin`` or a path -> (column name, what ``--model`` gets)."""
    if "=" in spec:
        name, path = spec.split("=", 1)
        return name, path
    if spec == "builtin":
        return "builtin", spec
    path = Path(spec)
    return (path.name if path.is_dir() else path.stem), spec


def sr_columns(args, steps: int) -> list[tuple[str, str, list]]:
    """(column name, ``--model``, ``--steps``) of each SR column: each ``--model-sr`` sampled
    with ``steps`` (None: its preset's), then, with ``--one-step``, each one's one-step
    estimate."""
    columns = [(name, model, steps) for name, model in args.model_sr]
    if args.one_step:
        columns += [(f"{name}, 1 step", model, 1) for name, model in args.model_sr]
    return columns


def steps_option(steps: int | None) -> list:
    return [] if steps is None else ["--steps", steps]


def read_frames(path: Path) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` of a frame folder or image."""
    return np.stack(list(open_video(path).frames()))


def write_image(path: Path, frame: np.ndarray) -> Path:
    Image.fromarray(frame).save(path)
    return path


def mask_image(hole: np.ndarray) -> np.ndarray:
    """bool ``(H, W)``, True = fill -> a white-on-black uint8 RGB mask for ``--mask``."""
    return np.repeat(hole[..., None].astype(np.uint8) * 255, 3, axis=2)


def panel_psnr(out: np.ndarray, truth: np.ndarray, hole: np.ndarray | None = None) -> float:
    """PSNR (dB) of uint8 ``(H, W, 3)`` against the original, inside ``hole`` when given."""
    where = None if hole is None else torch.from_numpy(hole)[None, None]
    return psnr(frames_to_tensor(out), frames_to_tensor(truth), where)


def draw_strip(rows: list[list[tuple[np.ndarray, list[str]]]], path: Path) -> int:
    """One PNG: rows of panels, each with its caption lines above it. Returns its size in bytes."""
    font = ImageFont.load_default(size=FONT_SIZE)
    line = FONT_SIZE + 3
    bands = [line * max(len(caption) for _, caption in row) + 3 for row in rows]
    widths = [max(row[c][0].shape[1] for row in rows) for c in range(len(rows[0]))]
    heights = [max(panel.shape[0] for panel, _ in row) for row in rows]
    total_width = sum(widths) + GAP * (len(widths) - 1)
    total_height = sum(heights) + sum(bands) + GAP * (len(rows) - 1)
    sheet = Image.new("RGB", (total_width, total_height), "white")
    draw = ImageDraw.Draw(sheet)
    top = 0
    for row, height, band in zip(rows, heights, bands, strict=True):
        left = 0
        for (panel, caption), width in zip(row, widths, strict=True):
            for number, text in enumerate(caption):
                while len(text) > 4 and draw.textlength(text, font=font) > width - 4:
                    text = text[:-2] + "~"
                draw.text((left + 2, top + 1 + number * line), text, fill="black", font=font)
            sheet.paste(Image.fromarray(panel), (left, top + band))
            left += width + GAP
        top += band + height + GAP
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path.stat().st_size


def sr_rows(columns: dict[str, np.ndarray], truths: np.ndarray, names) -> tuple[list, list]:
    """Rows (bicubic | models | original) of panels and their PSNRs; ``columns`` maps a name to
    its uint8 ``(N, H, W, 3)`` images."""
    rows, scores = [], []
    for index, truth in enumerate(truths):
        score = {name: panel_psnr(images[index], truth) for name, images in columns.items()}
        rows.append(
            [(images[index], [name, f"{score[name]:.2f} dB"]) for name, images in columns.items()]
            + [(truth, ["original", names[index]])]
        )
        scores.append({"image": names[index], "psnr": score})
    return rows, scores


def inpaint_rows(truths, holes, outputs, names) -> tuple[list, list]:
    """Rows (masked input | models | original) and PSNRs inside the hole; outside it too where
    an output differs from the input there (``wdiff inpaint`` pastes the known pixels back:
    then ``None``, and the caption says so)."""
    rows, scores = [], []
    for index, (truth, hole) in enumerate(zip(truths, holes, strict=True)):
        masked = tensor_to_frames(
            Inpainting.degrade(frames_to_tensor(truth), torch.from_numpy(hole)[None, None])
        )[0]
        inside = {"masked input": panel_psnr(masked, truth, hole)}
        outside = {}
        row = [(masked, ["masked input", f"hole {inside['masked input']:.2f} dB"])]
        for name, out in outputs.items():
            inside[name] = panel_psnr(out[index], truth, hole)
            kept = np.array_equal(out[index][~hole], truth[~hole])
            outside[name] = None if kept else panel_psnr(out[index], truth, ~hole)
            rest = "rest: input kept" if kept else f"rest {outside[name]:.2f} dB"
            row.append((out[index], [name, f"hole {inside[name]:.2f} dB", rest]))
        rows.append([*row, (truth, ["original", names[index]])])
        scores.append({"image": names[index], "psnr_hole": inside, "psnr_outside": outside})
    return rows, scores


def clip_strips(args, wdiff: Runner, work: Path, strips: dict) -> None:
    """The bundled clip: x8 and x4 super-resolution, and inpainting a box."""
    reader = open_video(args.clip)
    original = np.stack(list(reader.frames(0, max(args.frames) + 1)))
    source = work / "clip"
    source.mkdir()
    for index, frame in enumerate(original):
        write_image(source / f"frame_{index:06d}.png", frame)
    names = [f"frame {index}" for index in args.frames]
    for scale in SCALES:
        low = work / f"clip-low-x{scale}"
        wdiff("degrade", source, "--scale", scale, "-o", low)
        lows = read_frames(low)
        height, width = lows.shape[1] * scale, lows.shape[2] * scale
        outputs = {}
        for number, (name, model, steps) in enumerate(sr_columns(args, None)):
            out = work / f"clip-x{scale}-{number}"
            wdiff(
                "upscale", low, "--scale", scale, "--preset", args.clip_preset,
                *steps_option(steps), "--model", model, "-o", out, restore=True,
            )  # fmt: skip
            outputs[name] = read_frames(out)[args.frames]
        # panels: columns --clip-crop of the frames (bicubic from the whole low-res frame)
        left, right = args.clip_crop[0], args.clip_crop[0] + args.clip_crop[1]
        upsample = SuperResolution(scale).upsample
        bicubics = tensor_to_frames(upsample(frames_to_tensor(lows[args.frames])))
        truths = original[args.frames, :height, :width]
        columns = {"bicubic": bicubics} | outputs
        rows, scores = sr_rows(
            {name: frames[:, :, left:right] for name, frames in columns.items()},
            truths[:, :, left:right],
            names,
        )
        strips[f"clip-x{scale}"] = {
            "what": f"{args.clip} reduced {scale}x ({lows.shape[2]}x{lows.shape[1]}), "
            f"upscaled with --preset {args.clip_preset}; columns {left} to {right - 1} shown",
            "rows": rows,
            "scores": scores,
        }
    x, y, w, h = args.clip_box
    hole = np.zeros(original.shape[1:3], dtype=bool)
    hole[y : y + h, x : x + w] = True
    mask = write_image(work / "clip-mask.png", mask_image(hole))
    outputs = {}
    for number, (name, model) in enumerate(args.model_inpaint):
        out = work / f"clip-inpaint-{number}"
        wdiff(
            "inpaint", source, "--mask", mask, "--preset", args.clip_preset, "--model", model,
            "-o", out, restore=True,
        )  # fmt: skip
        outputs[name] = read_frames(out)[args.frames]
    # the panels show the box and --clip-margin pixels around it
    top, bottom = max(y - args.clip_margin, 0), y + h + args.clip_margin
    left, right = max(x - args.clip_margin, 0), x + w + args.clip_margin
    window = np.s_[top:bottom, left:right]
    outputs = {name: out[(slice(None), *window)] for name, out in outputs.items()}
    truths = original[args.frames][(slice(None), *window)]
    rows, scores = inpaint_rows(truths, [hole[window]] * len(names), outputs, names)
    strips["clip-inpaint"] = {
        "what": f"{args.clip}, a {w}x{h} box at ({x}, {y}) filled with --preset "
        f"{args.clip_preset}; {args.clip_margin} pixels around it shown",
        "rows": rows,
        "scores": scores,
    }


def photo_strips(args, wdiff: Runner, work: Path, strips: dict) -> None:
    """Held-out photographs: centre crops, x8 and x4 super-resolution, seeded masks."""
    every = crops(args.crop, "photos", args.photo_side)
    # models_table's first draw of masks, one per held-out image: the same masks it scores
    holes = random_masks(every.shape[0], args.crop, generator(0, "models-table-masks"))
    truths = tensor_to_frames(every[args.photos])
    holes = holes[args.photos, 0].numpy()
    stems = [path.stem for path in photo_files("held-out")]
    if len(stems) != every.shape[0]:  # a held-out video would give several images
        stems = [f"held-out {index}" for index in range(every.shape[0])]
    names = [stems[index] for index in args.photos]
    files = []
    for index, truth in zip(args.photos, truths, strict=True):
        files.append(write_image(work / f"photo-{index}.png", truth))
    steps = ("--steps", args.steps)
    columns = sr_columns(args, args.steps)
    for scale in SCALES:
        outputs = {name: [] for name, _, _ in columns}
        lows = []
        for file, truth in zip(files, truths, strict=True):
            # what `wdiff degrade` does to each frame, without a child per crop
            lows.append(tensor_to_frames(SuperResolution(scale).degrade(frames_to_tensor(truth))))
            low = write_image(work / f"{file.stem}-low-x{scale}.png", lows[-1][0])
            for number, (name, model, column_steps) in enumerate(columns):
                out = work / f"{file.stem}-x{scale}-{number}.png"
                wdiff(
                    "upscale", low, "--scale", scale, *steps_option(column_steps),
                    "--model", model, "-o", out, restore=True,
                )  # fmt: skip
                outputs[name].append(read_frames(out)[0])
        low_all = frames_to_tensor(np.concatenate(lows))
        bicubics = tensor_to_frames(SuperResolution(scale).upsample(low_all))
        outputs = {name: np.stack(images) for name, images in outputs.items()}
        rows, scores = sr_rows({"bicubic": bicubics} | outputs, truths, names)
        strips[f"photos-x{scale}"] = {
            "what": f"held-out photographs, {args.crop}-pixel centre crops reduced {scale}x, "
            f"{args.steps} steps",
            "rows": rows,
            "scores": scores,
        }
    outputs = {name: [] for name, _ in args.model_inpaint}
    for file, hole in zip(files, holes, strict=True):
        mask = write_image(work / f"{file.stem}-mask.png", mask_image(hole))
        for number, (name, model) in enumerate(args.model_inpaint):
            out = work / f"{file.stem}-inpaint-{number}.png"
            wdiff(
                "inpaint", file, "--mask", mask, *steps, "--model", model, "-o", out,
                restore=True,
            )  # fmt: skip
            outputs[name].append(read_frames(out)[0])
    rows, scores = inpaint_rows(truths, holes, outputs, names)
    strips["photos-inpaint"] = {
        "what": f"held-out photographs, {args.crop}-pixel centre crops, models_table's first "
        f"draw of masks, {args.steps} steps",
        "rows": rows,
        "scores": scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-sr", nargs="+", default=["builtin"], help="builtin, NAME=run folder or file"
    )
    parser.add_argument("--model-inpaint", nargs="+", default=["builtin"])
    parser.add_argument("--clip", default="builtin:bunny")
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 25, 49])
    parser.add_argument("--clip-preset", default="fast")
    parser.add_argument(
        "--clip-box", type=int, nargs=4, default=[196, 60, 72, 48], metavar=("X", "Y", "W", "H")
    )
    parser.add_argument(
        "--clip-crop", type=int, nargs=2, default=[16, 256], metavar=("LEFT", "WIDTH"),
        help="super-resolution panels: these columns of the frames",
    )  # fmt: skip
    parser.add_argument("--clip-margin", type=int, default=40, help="shown around the box")
    parser.add_argument("--photos", type=int, nargs="+", default=[2, 7, 10, 11])
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--photo-side", type=int, default=512)
    parser.add_argument("--steps", type=int, default=25, help="photographs: Euler steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of wdiff")
    parser.add_argument(
        "--one-step", action=argparse.BooleanOptionalAction, default=True,
        help="super-resolution: also each model's one-step estimate (--steps 1)",
    )  # fmt: skip
    parser.add_argument("--skip-clip", action="store_true")
    parser.add_argument("--skip-photos", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/gallery"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gallery.json"))
    args = parser.parse_args()
    args.model_sr = [model_spec(spec) for spec in args.model_sr]
    args.model_inpaint = [model_spec(spec) for spec in args.model_inpaint]
    start = time.perf_counter()
    wdiff = Runner(args.threads, args.seed)
    strips: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_clip:
            clip_strips(args, wdiff, Path(folder), strips)
        if not args.skip_photos:
            photo_strips(args, wdiff, Path(folder), strips)
    result = {
        "benchmark": "gallery",
        "models_sr": dict(args.model_sr),
        "models_inpaint": dict(args.model_inpaint),
        "clip": args.clip,
        "frames": args.frames,
        "clip_preset": args.clip_preset,
        "photos": args.photos,
        "crop": args.crop,
        "steps": args.steps,
        "one_step": args.one_step,
        "seed": args.seed,
        "units": "PSNR in dB on RGB against the original, on the pixels each panel shows; "
        "inpainting: inside the hole, and outside it (null: the known pixels kept exactly)",
        "strips": {},
    }
    for name, strip in strips.items():
        path = args.out_dir / f"{name}.png"
        size = draw_strip(strip["rows"], path)
        result["strips"][name] = {
            "file": str(path),
            "bytes": size,
            "what": strip["what"],
            "rows": strip["scores"],
        }
        print(f"{path} ({size / 1024:.0f} KiB): {strip['what']}")
        for row in strip["scores"]:
            if "psnr" in row:
                shown = "  ".join(f"{col} {value:.2f}" for col, value in row["psnr"].items())
            else:
                shown = "  ".join(
                    f"{col} hole {value:.2f}" for col, value in row["psnr_hole"].items()
                ) + "".join(
                    f"  {col} rest {'kept' if v is None else f'{v:.2f}'}"
                    for col, v in row["psnr_outside"].items()
                )
            print(f"  {row['image']:18s} {shown}")
    result["wdiff_calls"] = wdiff.calls
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}"
    print(f"{wdiff.calls} wdiff runs, {result['seconds']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
