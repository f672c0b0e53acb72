"""Smoke run of every diffusers layout wdiff accepts, on tiny random folders built here (no
downloads): SDXL inpainting with the Playground-style EDM scheduler and latents_mean/std, an
fp16-variant SDXL inpainting folder, SD inpainting and the SD x4 upscaler, each through
`wdiff inpaint`/`wdiff upscale` on a 3-frame clip with warped noise and self-guidance, in the
given --dtype (fp16/bf16 on a GPU: the path a CPU cannot take). Writes one JSON object.

    python benchmarks/layouts_smoke.py --device cuda --dtype fp16 --out smoke.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="fp16")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import diffusers
    from media import make_clip
    from PIL import Image
    from sd_tiny import make_tiny_sd_inpaint, make_tiny_sd_upscaler
    from sdxl_tiny import make_tiny_sdxl

    from wdiff.cli import main as wdiff

    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        clip = make_clip(root / "low.mp4", frames=3, size=(32, 24))
        hole = Image.new("L", (32, 24), 0)
        hole.paste(255, (8, 6, 24, 18))
        hole.save(root / "mask.png")
        edm = diffusers.EDMDPMSolverMultistepScheduler(sigma_data=0.5, sigma_max=80.0)
        layouts = {
            "sdxl-inpaint-edm": ("inpaint", make_tiny_sdxl(root, 9, "edm", edm, True)),
            "sdxl-inpaint-fp16-variant": ("inpaint", make_tiny_sdxl(root, 9, "v", variant="fp16")),
            "sd-inpaint": ("inpaint", make_tiny_sd_inpaint(root)),
            "sd-x4-upscaler": ("upscale", make_tiny_sd_upscaler(root)),
        }
        for name, (command, folder) in layouts.items():
            task = ["--mask", str(root / "mask.png")] if command == "inpaint" else ["--scale", "4"]
            argv = [command, str(clip), *task, "--model", str(folder), "--steps", "4"]
            argv += ["--dtype", args.dtype, "--device", args.device, "--guidance", "1"]
            argv += ["--noise", "gp", "--quiet", "--no-cache", "-o", str(root / f"{name}.mp4")]
            began = time.perf_counter()
            status = wdiff(argv)
            rows[name] = {"exit": status, "seconds": round(time.perf_counter() - began, 2)}
            print(name, rows[name], file=sys.stderr)
    document = {"device": args.device, "dtype": args.dtype, "layouts": rows}
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(row["exit"] == 0 for row in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
