"""wdiff upscale / inpaint / degrade end to end on small clips with a tiny model."""

from __future__ import annotations

import csv
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from media import audio_seconds, make_clip

from wdiff.cli import main
from wdiff.models.builtin import ARCHITECTURES, BuiltinConfig, BuiltinNet
from wdiff.video import open_video


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for task in ("sr", "inpaint"):
        torch.manual_seed(0)
        net = BuiltinNet(BuiltinConfig(task=task, **ARCHITECTURES["builtin-tiny"]))
        paths[task] = folder / f"{task}.safetensors"
        net.save(paths[task])
    return paths


def decoded(path):
    return np.stack(list(open_video(path).frames()))


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
def test_upscale_keeps_fps_audio_and_writes_report(tmp_path, models):
    clip = make_clip(tmp_path / "low.mp4", frames=5, size=(16, 12), fps=Fraction(25))
    out = tmp_path / "up.mp4"
    args = [
        "upscale",
        str(clip),
        "--scale",
        "2",
        "--steps",
        "3",
        "--model",
        str(models["sr"]),
        "-o",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    info = open_video(out).info
    assert (info.width, info.height, info.frame_count, info.fps) == (32, 24, 5, Fraction(25))
    assert abs(audio_seconds(out) - 5 / 25) <= 1 / 25
    report = json.loads((tmp_path / "up.report.json").read_text())
    assert report["settings"]["guidance"] == 1.0 and report["settings"]["seed"] == 0
    assert len(report["frames"]) == 5 and report["frames"][0]["warping_error_previous"] is None
    assert report["mean_warping_error_previous"] >= 0
    assert {"flow", "sample_and_write", "load_model"} <= set(report["seconds"])
    rows = list(csv.DictReader((tmp_path / "up.frames.csv").open()))
    assert len(rows) == 5
    assert main(args) == 2  # the output exists: refused without --overwrite
    again = tmp_path / "again.mp4"
    assert main([*args[:-3], "-o", str(again), "--quiet"]) == 0
    assert np.array_equal(decoded(out), decoded(again))  # same seed, same output


@pytest.mark.parametrize("method", ["warped", "batch-consistent"])
def test_inpaint_fills_only_the_hole(tmp_path, models, method):
    from PIL import Image

    clip = make_clip(tmp_path / "in.mp4", frames=4, size=(16, 16), audio=False)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "filled"  # PNG frames: lossless, so known pixels can be compared
    assert (
        main(
            [
                "inpaint",
                str(clip),
                "--mask",
                str(tmp_path / "mask.png"),
                "--model",
                str(models["inpaint"]),
                "--steps",
                "3",
                "--sampler",
                method,
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    source, filled = decoded(clip).astype(int), decoded(out).astype(int)
    assert filled.shape == source.shape
    known = mask == 0
    if method == "batch-consistent":  # CG makes the known pixels those of the input
        assert np.abs(filled[:, known] - source[:, known]).max() <= 1
    assert np.abs(filled[:, ~known] - source[:, ~known]).mean() > 2  # the hole was redrawn


def test_degrade_then_wrong_model_task_is_clear(tmp_path, models, capsys):
    clip = make_clip(tmp_path / "hi.mp4", frames=3, size=(34, 18))
    low = tmp_path / "low.mp4"
    assert main(["degrade", str(clip), "--scale", "4", "-o", str(low), "--quiet"]) == 0
    info = open_video(low).info
    assert (info.width, info.height, info.frame_count) == (8, 4, 3)
    assert main(["upscale", str(low), "--model", str(models["inpaint"]), "--quiet"]) == 2
    assert "trained for inpaint" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["warped", "batch-consistent"])
@pytest.mark.parametrize("frames", [1, 6])
def test_upscale_a_still_and_a_clip_shorter_than_a_window(tmp_path, method, frames):
    # one frame: a still image needs no flow; six: batch-consistent's last window is partial
    # (the shipped model: its frames came out of a batch non-contiguous, which the resume
    # state could not save)
    clip = make_clip(tmp_path / "low.mp4", frames=frames, size=(16, 12), audio=False)
    out = tmp_path / "up.mp4"
    args = ["upscale", str(clip), "--scale", "2", "--steps", "2", "--sampler", method]
    assert main([*args, "--model", "builtin", "-o", str(out), "--quiet"]) == 0
    assert open_video(out).info.frame_count == frames
    report = json.loads((tmp_path / "up.report.json").read_text())
    assert len(report["frames"]) == frames
    assert (report["mean_warping_error_previous"] is None) == (frames == 1)


def test_an_image_is_upscaled_to_an_image_beside_it(tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_frame()).save(photo)
    assert main(["upscale", str(photo), "--scale", "2", "--steps", "2", "--quiet"]) == 0
    upscaled = tmp_path / "photo.x2-warped-gp.png"
    assert Image.open(upscaled).size == (32, 24)
    assert (tmp_path / "photo.x2-warped-gp.report.json").is_file()
    jpeg = tmp_path / "small.jpg"
    assert main(["degrade", str(upscaled), "--scale", "2", "-o", str(jpeg), "--quiet"]) == 0
    assert Image.open(jpeg).format == "JPEG" and Image.open(jpeg).size == (16, 12)


def gradient_frame():
    rows, cols = np.mgrid[0:12, 0:16]
    return np.stack([rows * 20, cols * 15, (rows + cols) * 9], axis=-1).astype(np.uint8)


def test_a_prompt_the_model_cannot_read_is_named_not_silently_dropped(tmp_path, models, capfd):
    clip = make_clip(tmp_path / "in.mp4", frames=2, size=(16, 16), audio=False)
    mask = tmp_path / "mask.png"
    from PIL import Image

    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(mask)
    args = ["inpaint", str(clip), "--mask", str(mask), "--model", str(models["inpaint"])]
    args += [
        "--steps",
        "2",
        "--prompt",
        "a robot sitting on a bench",
        "-o",
        str(tmp_path / "o.mp4"),
    ]
    assert main(args) == 0
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "--prompt is ignored" in warnings[0]
