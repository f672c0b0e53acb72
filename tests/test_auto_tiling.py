"""--tile auto: frames tiled at a model's native size, tiles halved when memory runs out (the
frame redone, so it equals a run with that fixed --tile), the size recorded in the report and
kept on --resume, and one line of advice when even the smallest tile does not fit.

The GPU's memory limit is faked by a wrapper around a tiny built-in model that raises
``torch.OutOfMemoryError`` for inputs of more than ``limit`` working-grid cells."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from media import make_clip

import wdiff.restore.models
from wdiff.cli import main
from wdiff.config import RestoreSettings, merge_settings
from wdiff.diffusion.tiling import TilesExhausted, auto_tile, is_out_of_memory, tile_starts
from wdiff.errors import WdiffError
from wdiff.resume import resume_folder
from wdiff.video import open_video


class MemoryLimited:
    """``inner`` that runs out of memory above ``limit`` cells per call (None: never), declares
    ``max_tile`` (if given), remembers the largest input it saw, and after ``interrupt_at``
    calls raises KeyboardInterrupt (a kill in the middle of a run)."""

    def __init__(self, inner, limit=None, max_tile=None, interrupt_at=None):
        self.inner, self.limit, self.max_tile = inner, limit, max_tile
        self.interrupt_at, self.calls, self.largest = interrupt_at, 0, (0, 0)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, x, sigma, cond):
        self.calls += 1
        if self.interrupt_at is not None and self.calls >= self.interrupt_at:
            raise KeyboardInterrupt
        height, width = x.shape[-2:]
        if self.limit is not None and height * width > self.limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {height * width} cells (fake limit "
                f"{self.limit})"
            )
        self.largest = max(self.largest, (height, width))
        return self.inner(x, sigma, cond)


@pytest.fixture
def limited(monkeypatch):
    """Make every run load its model wrapped: ``limited(**MemoryLimited options)`` -> the list
    of wrappers made so far."""
    made = []
    original = wdiff.restore.models.load_denoiser

    def install(**options):
        def load(settings, device):
            made.append(MemoryLimited(original(settings, device), **options))
            return made[-1]

        monkeypatch.setattr(wdiff.restore.models, "load_denoiser", load)
        return made

    return install


def frames_of(path) -> np.ndarray:
    return np.stack(list(open_video(path).frames()))


def report_of(output) -> dict:
    return json.loads(output.with_name(f"{output.stem}.report.json").read_text())


def upscale_args(clip, model):
    return ["upscale", str(clip), "--scale", "2", "--steps", "2", "--model", str(model)]


# --------------------------------------------------------------------------- the policy itself


def test_auto_tile_policy():
    # (a) the model's native size when the frame exceeds it, else whole frames
    assert auto_tile((96, 128), None, 4, 8) == 0
    assert auto_tile((96, 128), 128, 4, 8) == 0
    assert auto_tile((135, 240), 128, 4, 8) == 128
    # (b) halved (whole frames: the longer side), multiples of 8 cells, down to the floor
    assert auto_tile((135, 240), 128, 4, 8, failed=128) == 64
    assert auto_tile((96, 150), None, 4, 8, failed=0) == 72
    assert auto_tile((96, 128), None, 32, 1, failed=0) == 64
    with pytest.raises(TilesExhausted) as caught:  # 32 < 2 x overlap and < 64 px
        auto_tile((96, 128), None, 32, 1, failed=64)
    assert caught.value.pixels == 64
    assert auto_tile((96, 128), None, 4, 8, failed=16) == 8  # 8 cells = 64 px
    with pytest.raises(TilesExhausted):
        auto_tile((96, 128), None, 4, 8, failed=8)


def test_out_of_memory_errors_are_recognised():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    cpu = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert is_out_of_memory(cpu)
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_tile_setting_accepts_auto_zero_and_sizes(tmp_path):
    assert RestoreSettings().tile == "auto"
    assert merge_settings("sr", None, {"tile": 256}).tile == 256
    assert merge_settings("sr", None, {"tile": "0"}).tile == 0
    preset = tmp_path / "p.yaml"
    preset.write_text("tile: 512\ntile_overlap: 16\n")
    assert merge_settings("sr", str(preset), {}).tile == 512
    preset.write_text("tile: auto\n")
    assert merge_settings("sr", str(preset), {}).tile == "auto"
    preset.write_text("tile: big\n")
    with pytest.raises(WdiffError, match="tile"):
        merge_settings("sr", str(preset), {})
    with pytest.raises(WdiffError, match="overlap"):
        merge_settings("sr", None, {"tile": "auto", "tile_overlap": 1})


# ------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_out_of_memory_halves_the_tile_and_equals_that_fixed_tile(
    tmp_path, sr_model, limited, capfd
):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(64, 48), audio=False)  # -> 128x96
    args = upscale_args(clip, sr_model) + ["--no-cache"]
    made = limited(limit=64 * 64)  # whole 128x96 frames do not fit, 64 px tiles do

    auto = tmp_path / "auto.mp4"
    assert main([*args, "-o", str(auto)]) == 0
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "64 px" in warnings[0] and "frame 0" in warnings[0], err
    assert "whole frames" in warnings[0]
    assert made[-1].largest == (64, 64)
    report = report_of(auto)
    assert report["settings"]["tile"] == "auto"
    assert [row["tile"] for row in report["frames"]] == [64, 64, 64]
    assert report["tiling"]["tile_used"] == 64
    assert "tile" in (tmp_path / "auto.frames.csv").read_text().splitlines()[0].split(",")

    fixed = tmp_path / "fixed.mp4"
    assert main([*args, "--tile", "64", "-o", str(fixed), "--quiet"]) == 0
    assert np.array_equal(frames_of(auto), frames_of(fixed))
    assert [row["tile"] for row in report_of(fixed)["frames"]] == [64, 64, 64]
    assert capfd.readouterr().err == ""


@pytest.mark.slow
def test_resume_keeps_the_tile_auto_settled_on(tmp_path, sr_model, limited):
    clip = make_clip(tmp_path / "low.mp4", frames=4, size=(64, 48), audio=False)
    args = upscale_args(clip, sr_model) + ["--no-cache", "--quiet"]
    fixed = tmp_path / "fixed.mp4"
    assert main([*args, "--tile", "64", "-o", str(fixed)]) == 0

    # per frame: 2 steps on 3 x 2 tiles of 64 (overlap 32); the first call is the whole frame;
    # guided frames (1 on) call each tile twice a step: forward, and again in the backward pass
    per_frame = 2 * len(tile_starts(128, 64, 32)) * len(tile_starts(96, 64, 32))
    limited(limit=64 * 64, interrupt_at=1 + 3 * per_frame + 1)  # killed in frame 2
    out = tmp_path / "out.mp4"
    assert main([*args, "-o", str(out)]) == 130
    assert not out.exists() and resume_folder(out).exists()

    # more memory now: a fresh run would sample whole frames, the resumed one keeps 64 px tiles
    made = limited()
    assert main([*args, "-o", str(out), "--resume"]) == 0
    assert made[-1].largest == (64, 64)
    assert [row["tile"] for row in report_of(out)["frames"]] == [64] * 4
    assert np.array_equal(frames_of(out), frames_of(fixed))


def test_below_the_floor_one_line_naming_tile(tmp_path, sr_model, limited, capfd):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(64, 48), audio=False)
    limited(limit=32 * 32)  # below the 64 px floor
    out = tmp_path / "out.mp4"
    assert main([*upscale_args(clip, sr_model), "--no-cache", "-o", str(out)]) == 2
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1, lines  # no warning about the tiles tried first
    assert lines[0].startswith("wdiff: error: out of memory") and "--tile" in lines[0]
    assert "--guidance-mode cheap" in lines[0] and "--dtype" in lines[0]
    assert "Traceback" not in lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))]


def test_fixed_tile_and_whole_frames_never_retry(tmp_path, sr_model, limited, capfd):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(64, 48), audio=False)
    limited(limit=64 * 64)
    args = [*upscale_args(clip, sr_model), "--no-cache", "--quiet"]
    assert main([*args, "--tile", "0", "-o", str(tmp_path / "a.mp4")]) == 2
    err = capfd.readouterr().err
    assert "out of memory" in err and "--tile 512" in err and len(err.splitlines()) == 1


def test_model_max_tile_is_used_without_error(tmp_path, sr_model, limited, capfd):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(32, 24), audio=False)  # -> 64x48
    args = [*upscale_args(clip, sr_model), "--no-cache"]
    made = limited(max_tile=32)
    auto = tmp_path / "auto.mp4"
    assert main([*args, "-o", str(auto)]) == 0
    assert "warning" not in capfd.readouterr().err
    assert made[-1].largest == (32, 32)
    report = report_of(auto)
    assert [row["tile"] for row in report["frames"]] == [32, 32, 32]
    assert report["tiling"]["overlap_used"] == 16  # the overlap is at most half the tile
    fixed = tmp_path / "fixed.mp4"
    assert main([*args, "--tile", "32", "--tile-overlap", "16", "-o", str(fixed), "-q"]) == 0
    assert np.array_equal(frames_of(auto), frames_of(fixed))


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
def test_two_halvings_in_one_frame_warn_once(tmp_path, sr_model, limited, capfd):
    clip = make_clip(tmp_path / "low.mp4", frames=2, size=(128, 96), audio=False)  # -> 256x192
    args = [*upscale_args(clip, sr_model), "--no-cache", "--guidance", "0", "--tile-overlap", "8"]
    made = limited(limit=64 * 64)  # whole frames and 128 px tiles do not fit
    out = tmp_path / "out.mp4"
    assert main([*args, "-o", str(out)]) == 0
    lines = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1 and "whole frames" in lines[0] and "64 px" in lines[0], lines
    assert made[-1].largest == (64, 64)
    assert [row["tile"] for row in report_of(out)["frames"]] == [64, 64]
