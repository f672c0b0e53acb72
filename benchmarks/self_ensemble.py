"""A built-in SR model's one-step estimate averaged over the eight flips and quarter turns of its
input (the "self-ensemble" of EDSR, Lim et al. 2017), against the plain estimate, on the
held-out crops of ``models_table.py``. Not something wdiff does: a measure of how far the
network is from treating its input's orientations alike (docs/models.md).

    python benchmarks/self_ensemble.py [--sr wdiff/models/weights/sr.safetensors] \
        [--data samples|photos] [--out benchmarks/results/self_ensemble.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

import torch
from models_table import crops, psnr

from wdiff.models.builtin import BuiltinDenoiser, BuiltinNet
from wdiff.noise.base import generator
from wdiff.noise.exact import gp_noise
from wdiff.tasks import SuperResolution

# (quarter turns, mirrored): the eight symmetries of the square
DIHEDRAL = [(turns, mirrored) for turns in range(4) for mirrored in (False, True)]


def transform(image: torch.Tensor, turns: int, mirrored: bool) -> torch.Tensor:
    image = torch.rot90(image, turns, (-2, -1))
    return image.flip(-1) if mirrored else image


def untransform(image: torch.Tensor, turns: int, mirrored: bool) -> torch.Tensor:
    image = image.flip(-1) if mirrored else image
    return torch.rot90(image, -turns, (-2, -1))


def one_step_estimates(
    denoiser: BuiltinDenoiser, noise: torch.Tensor, cond: torch.Tensor
) -> list[torch.Tensor]:
    """The one-step estimate (one call at sigma_max) for each symmetry in ``DIHEDRAL``, mapped
    back; ``noise`` and ``cond`` ``(B, 3, H, W)`` with H == W."""
    sigma = denoiser.sigmas(1)[0]
    with torch.no_grad():
        return [
            untransform(denoiser(transform(noise * sigma, *s), sigma, transform(cond, *s)), *s)
            for s in DIHEDRAL
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sr", type=Path, default=Path("wdiff/models/weights/sr.safetensors"))
    parser.add_argument("--data", choices=("samples", "photos"), default="samples")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=4, help="noise draws")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/self_ensemble.json"))
    args = parser.parse_args()
    net, _ = BuiltinNet.load(args.sr / "model.safetensors" if args.sr.is_dir() else args.sr)
    denoiser = BuiltinDenoiser(net)
    truth = crops(args.crop, args.data)
    result = {"model": str(args.sr), "data": args.data, "repeats": args.repeats, "psnr": {}}
    for scale in (4, 8):
        task = SuperResolution(scale)
        bicubic = task.upsample(task.degrade(truth))
        plain, flips, all_eight = [], [], []
        for draw in range(args.repeats):
            # the same noise as models_table.py's one-step row
            shape = (truth.shape[0], 3, *truth.shape[-2:])
            noise = gp_noise(shape, generator(draw, "models-table"))
            outs = one_step_estimates(denoiser, noise, bicubic)
            plain.append(psnr(outs[0].clamp(-1, 1), truth))
            mirrors_and_half_turns = [outs[DIHEDRAL.index(s)] for s in DIHEDRAL if s[0] % 2 == 0]
            flips.append(psnr(torch.stack(mirrors_and_half_turns).mean(0).clamp(-1, 1), truth))
            all_eight.append(psnr(torch.stack(outs).mean(0).clamp(-1, 1), truth))
        row = {
            "bicubic": psnr(bicubic, truth),
            "one step": mean(plain),
            "flips (4)": mean(flips),
            "self-ensemble (8)": mean(all_eight),
        }
        result["psnr"][f"x{scale}"] = row
        print(f"x{scale} " + "  ".join(f"{name} {value:.2f}" for name, value in row.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
