"""A restore's report: one row per frame (its tile, time and warping errors, scored by
``temporal.TemporalErrors`` as ``wdiff eval`` scores them; inpainting: also the warping errors
inside the hole and outside it, and the PSNR against the input there), the run's summary (what
was run on what: input, mask, command line, preset, the task's settings), and the files
``OUT.report.json`` and ``OUT.frames.csv`` beside the output."""

from __future__ import annotations

import csv
import json
import platform
import resource
import time
from pathlib import Path

import torch

from wdiff.flow.motion import Motion
from wdiff.metrics import mse, psnr_db
from wdiff.temporal import TemporalErrors
from wdiff.video import fps_text

MEANS = (  # row columns the summary gives the mean of, as mean_COLUMN
    "warping_error_previous",
    "warping_error_first",
    "latent_warping_error_previous",
    "latent_warping_error_first",
    "warping_error_previous_hole",
    "warping_error_previous_outside",
    "warping_error_first_hole",
    "warping_error_first_outside",
    "psnr_input_hole",
    "psnr_input_outside",
)


class ReportRows:
    """Rows of finished frames in order; ``latent_scale`` (pixels per cell) for a model in a
    latent space, whose errors are also scored there, else None."""

    def __init__(self, latent_scale: int | None, rows: list[dict] | None = None):
        self.latent_scale = latent_scale
        self.temporal = TemporalErrors(latent_scale or 1)
        self.rows: list[dict] = rows or []
        self._began = time.perf_counter()

    def add(
        self,
        index: int,
        unit: torch.Tensor,
        motion: Motion | None,
        x0: torch.Tensor,
        tile: int,
        observed: torch.Tensor | None = None,
        hole: torch.Tensor | None = None,
    ) -> dict:
        """Score frame ``index`` (RGB ``(1, 3, H, W)`` in [0, 1]; ``x0`` its working-space
        result; ``motion`` from the previous frame on the pixel grid, None for frame 0) and
        add its row; ``tile`` in output pixels (0 = whole frames). Inpainting: ``observed``
        the input frame ([0, 1]) and ``hole`` its (dilated) hole, bool ``(1, 1, H, W)``."""
        latent = x0.detach().float() if self.latent_scale else None
        if motion is None:
            errors = self.temporal.add(unit, latent=latent, hole=hole)
        else:
            forward, valid = motion.forward, motion.valid_forward
            errors = self.temporal.add(unit, forward, valid, latent, hole)
        row = {
            "frame": index,
            "tile": tile,
            "seconds": 0.0,
            "warping_error_previous": errors.previous,
            "warping_error_first": errors.first,
        }
        if self.latent_scale:
            row["latent_warping_error_previous"] = errors.latent_previous
            row["latent_warping_error_first"] = errors.latent_first
        if hole is not None:
            for name in ("previous", "first"):
                row[f"warping_error_{name}_hole"] = getattr(errors, f"{name}_hole")
                row[f"warping_error_{name}_outside"] = getattr(errors, f"{name}_outside")
            for name, region in (("hole", hole), ("outside", ~hole)):
                error = float(mse(unit, observed, region)[0]) if bool(region.any()) else None
                row[f"psnr_input_{name}"] = None if error is None else psnr_db(error)
        now = time.perf_counter()
        row["seconds"] = round(now - self._began, 3)
        self._began = now
        self.rows.append(row)
        return row


def summarise(
    settings,
    rows,
    stage_seconds,
    device,
    info,
    output,
    size,
    mask: Path | None = None,
    preset: str | None = None,
    command_line: list[str] | None = None,
) -> dict:
    """The report of a finished run: the input (and ``mask``), the ``command_line`` (None from
    Python) and ``preset``, the settings this task reads, versions, sizes, times, peak memory,
    the means of the per-frame errors and the per-frame ``rows``."""
    import diffusers

    import wdiff

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    peak = {"cpu_max_rss_gib": round(peak_rss, 3)}
    if device.type == "cuda":
        peak["cuda_max_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    return {
        "output": str(output),
        "input": {
            "path": str(info.path),
            "mask": None if mask is None else str(mask),
            "width": info.width,
            "height": info.height,
            "frames": info.frame_count,
            "fps": fps_text(info.fps),
        },
        "command_line": None if command_line is None else list(command_line),
        "preset": preset,
        "settings": settings.task_dict(),
        "versions": {
            "wdiff": wdiff.__version__,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "python": platform.python_version(),
        },
        "device": str(device),
        "output_size": {"width": size[0], "height": size[1]},
        "seconds": {k: round(v, 2) for k, v in stage_seconds.items()},
        "seconds_per_frame": round(_mean([r["seconds"] for r in rows]) or 0.0, 3),
        "peak_memory": peak,
        **{
            f"mean_{key}": _mean([r.get(key) for r in rows])
            for key in MEANS
            if key in _KEPT or any(key in row for row in rows)
        },
        "frames": rows,
    }


_KEPT = MEANS[:4]  # in every report (None where not scored); the others where rows have them


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def report_paths(output: Path) -> tuple[Path, Path]:
    """``OUT.report.json`` and ``OUT.frames.csv`` beside the output ``OUT.mp4`` (or folder)."""
    output = Path(output)
    base = output.with_suffix("") if output.suffix else output
    return base.parent / f"{base.name}.report.json", base.parent / f"{base.name}.frames.csv"


def write_report(report: dict, output: Path) -> tuple[Path, Path]:
    """``OUT.report.json`` and ``OUT.frames.csv`` beside the output, each atomically, both or
    neither (a full disk at the CSV removes the JSON); a full disk is one ``DiskFull``."""
    from wdiff.outputs import atomic_output

    json_path, csv_path = report_paths(output)
    with atomic_output(json_path) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    try:
        with atomic_output(csv_path) as temporary, temporary.open("w", newline="") as handle:
            columns = dict.fromkeys(key for row in report["frames"] for key in row)
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(report["frames"])
    except BaseException:
        json_path.unlink(missing_ok=True)
        raise
    return json_path, csv_path
