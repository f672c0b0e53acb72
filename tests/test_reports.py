"""What a restore's report says (issue #21): the input, the mask, the command line and the preset
it ran with, only the settings its task reads; the frame rate as every other file writes it; for
inpainting, the warping errors and the PSNR against the input inside the hole and outside it,
per frame and on average, kept across a resume. And what `wdiff info` says of a file's pixels."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from media import make_clip, make_frame_folder, pattern
from PIL import Image
from stopping import stopped_after

from wdiff import metrics
from wdiff.cli import main
from wdiff.errors import Interrupted
from wdiff.restore import plan_restore, run_restore
from wdiff.temporal import TemporalErrors

HOLE_COLUMNS = [
    f"warping_error_{to}_{where}" for to in ("previous", "first") for where in ("hole", "outside")
] + ["psnr_input_hole", "psnr_input_outside"]


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "in.mp4", frames=3, size=(32, 24), audio=False)


@pytest.fixture
def mask(tmp_path):
    hole = np.zeros((24, 32), dtype=np.uint8)
    hole[6:16, 8:20] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    return tmp_path / "mask.png"


def report_of(out) -> dict:
    return json.loads(out.with_name(f"{out.stem}.report.json").read_text())


def test_reports_name_input_mask_command_line_preset_and_task_settings(
    tmp_path, clip, mask, inpaint_model, sr_model
):
    out = tmp_path / "filled.mp4"
    args = ["inpaint", str(clip), "--mask", str(mask), "--preset", "inpaint", "--steps", "1"]
    args += ["--model", str(inpaint_model), "--no-cache", "-o", str(out)]
    assert main(["--quiet", *args]) == 0
    report = report_of(out)
    assert report["input"]["path"] == str(clip) and report["input"]["mask"] == str(mask)
    assert report["command_line"] == ["wdiff", "--quiet", *args]
    assert report["preset"] == "inpaint"
    settings = report["settings"]
    assert settings["task"] == "inpaint" and settings["steps"] == 1
    assert "mask_dilate" in settings and "feather" in settings
    assert "scale" not in settings and "noise_level" not in settings

    job = plan_restore(  # from Python: no command line
        "sr", clip, tmp_path / "up.mp4", given={"scale": 2, "steps": 1, "model": str(sr_model)}
    )
    run_restore(job)
    report = report_of(tmp_path / "up.mp4")
    assert report["command_line"] is None and report["preset"] is None
    assert report["input"] | {"path": None} == {
        "path": None,
        "mask": None,
        "width": 32,
        "height": 24,
        "frames": 3,
        "fps": "24/1",
    }
    assert report["settings"]["scale"] == 2 and "noise_level" in report["settings"]
    assert "mask_dilate" not in report["settings"] and "feather" not in report["settings"]
    assert not any(key.endswith(("_hole", "_outside")) for key in report)  # inpainting's only


def test_fps_is_written_one_way_by_info_report_and_eval(tmp_path, clip, sr_model, capfd):
    folder = make_frame_folder(tmp_path / "frames", frames=3, size=(16, 12))
    for source, fps in ((clip, []), (folder, ["--fps", "29.97"])):
        assert main(["info", str(source), "--json", *fps]) == 0
        said = json.loads(capfd.readouterr().out)["fps"]
        assert said == {clip: "24/1", folder: "2997/100"}[source]  # exact, as typed
        out = tmp_path / f"{source.name}.up.mp4"
        args = ["upscale", str(source), "--scale", "2", "--steps", "1", "--model", str(sr_model)]
        assert main(["--quiet", *args, *fps, "--no-cache", "-o", str(out)]) == 0
        assert report_of(out)["input"]["fps"] == said
        scores = tmp_path / f"{source.name}.eval.json"
        assert main(["--quiet", "eval", str(source), *fps, "--no-cache", "-o", str(scores)]) == 0
        assert json.loads(scores.read_text())["videos"][0]["fps"] == said
        capfd.readouterr()  # the outputs' paths


def test_inpainting_reports_errors_inside_and_outside_the_hole(tmp_path, clip, mask, inpaint_model):
    out = tmp_path / "filled.mp4"
    args = ["inpaint", str(clip), "--mask", str(mask), "--model", str(inpaint_model)]
    assert main(["--quiet", *args, "--steps", "1", "--no-cache", "-o", str(out)]) == 0
    report = report_of(out)
    rows = report["frames"]
    assert all(row["psnr_input_outside"] == metrics.PSNR_CAP for row in rows)  # input kept
    assert all(row["psnr_input_hole"] < 30 for row in rows)  # a random model's fill
    assert rows[0]["warping_error_previous_hole"] is None  # no previous frame
    for row in rows[1:]:
        assert row["warping_error_previous_hole"] > 10 * row["warping_error_previous_outside"]
        assert row["warping_error_first_hole"] > 10 * row["warping_error_first_outside"]
    for column in HOLE_COLUMNS:
        values = [row[column] for row in rows if row[column] is not None]
        assert report[f"mean_{column}"] == pytest.approx(sum(values) / len(values))
    header = (tmp_path / "filled.frames.csv").read_text().splitlines()[0].split(",")
    assert set(HOLE_COLUMNS) <= set(header)


def test_hole_and_outside_errors_split_the_whole_one():
    """Two frames that differ only where the later frame's hole lands: outside it they agree
    exactly; the whole error is the two parts weighted by their valid cells."""
    generator = torch.Generator().manual_seed(0)
    earlier = torch.rand(1, 3, 12, 16, generator=generator)
    shift = torch.zeros(1, 2, 12, 16)
    shift[:, 0] = 2.0  # everything moves 2 px right
    later = torch.roll(earlier, 2, dims=-1)
    later_hole = torch.zeros(1, 1, 12, 16, dtype=torch.bool)
    later_hole[..., 4:8, 6:10] = True
    later = torch.where(later_hole, torch.rand(later.shape, generator=generator), later)
    earlier_hole = torch.zeros_like(later_hole)
    earlier_hole[..., 0:2, 0:3] = True  # the earlier frame's own hole, where nothing differs
    valid = torch.ones_like(later_hole)
    valid[..., :, 14:] = False  # those leave the frame

    temporal = TemporalErrors()
    temporal.add(earlier, hole=earlier_hole)
    errors = temporal.add(later, shift, valid, hole=later_hole)
    assert errors.previous_outside < 1e-20 and errors.previous_hole > 0.01  # (rounding)
    inside = metrics.hole_cells(earlier_hole, later_hole, shift)
    assert bool(inside[..., 4:8, 4:8].all()) and bool(inside[..., 0:2, 0:3].all())
    assert not bool(inside[..., 9:, :].any())
    counts = [float((valid & region).sum()) for region in (inside, ~inside)]
    whole = (errors.previous_hole * counts[0] + errors.previous_outside * counts[1]) / sum(counts)
    assert errors.previous == pytest.approx(whole)
    assert errors.first == errors.previous and errors.first_hole == errors.previous_hole

    squared = (later - earlier) ** 2
    region = earlier_hole.expand_as(squared)
    assert float(metrics.mse(later, earlier, earlier_hole)[0]) == pytest.approx(
        float(squared[region].mean())
    )
    assert float(metrics.mse(later, earlier, valid | True)[0]) == pytest.approx(
        float(metrics.mse(later, earlier)[0])
    )
    assert metrics.psnr_db(0.0) == metrics.PSNR_CAP and metrics.psnr_db(0.01) == pytest.approx(20)


def test_resumed_inpainting_reports_the_uninterrupted_errors(tmp_path, mask, inpaint_model):
    clip = make_clip(tmp_path / "in.mp4", frames=5, size=(32, 24), audio=False)
    given = {"steps": 1, "model": str(inpaint_model), "first_guidance": 0.5}

    def job(name, **options):
        return plan_restore(
            "inpaint", clip, tmp_path / name, mask=mask, given=given, use_cache=False, **options
        )

    whole = run_restore(job("whole.mp4")).report
    with pytest.raises(Interrupted, match="3 finished frames"):
        run_restore(job("out.mp4"), feedback=stopped_after(3))
    resumed = run_restore(job("out.mp4", resume=True)).report
    assert (tmp_path / "out.mp4").read_bytes() == (tmp_path / "whole.mp4").read_bytes()
    for column in ("warping_error_previous", "warping_error_first", *HOLE_COLUMNS):
        ours = [row[column] for row in resumed["frames"]]
        assert ours == [row[column] for row in whole["frames"]], column
        assert resumed[f"mean_{column}"] == whole[f"mean_{column}"]
    assert all(value is not None for value in ours[1:]) and not math.isnan(ours[-1])


def tagged_clip(path, pix_fmt="yuv420p10le", matrix=1, full_range=True):
    """Three frames of ``pattern`` as H.264 ``pix_fmt``, tagged with ``matrix`` (FFmpeg's code)
    as matrix, primaries and transfer, and ``full_range``."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=Fraction(24))
    stream.width, stream.height, stream.pix_fmt = 32, 24, pix_fmt
    context = stream.codec_context
    context.colorspace = context.color_primaries = context.color_trc = matrix
    context.color_range = 2 if full_range else 1
    for index in range(3):
        frame = av.VideoFrame.from_ndarray(pattern(index, 32, 24), format="rgb24")
        frame = frame.reformat(
            format=pix_fmt, dst_colorspace="itu709", dst_color_range="JPEG", threads=1
        )
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def test_info_shows_codec_pixel_format_depth_and_colour(tmp_path, capfd):
    source = tagged_clip(tmp_path / "hdr.mkv")
    assert main(["info", str(source), "--json"]) == 0
    fields = json.loads(capfd.readouterr().out)
    assert {key: fields[key] for key in ("codec", "pix_fmt", "bit_depth", "chroma")} == {
        "codec": "h264",
        "pix_fmt": "yuv420p10le",
        "bit_depth": 10,
        "chroma": "4:2:0",
    }
    assert fields["colour"] == {
        "matrix": "bt709",
        "primaries": "bt709",
        "transfer": "bt709",
        "range": "pc",
    }
    assert main(["info", str(source)]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert "     pix_fmt: yuv420p10le" in lines and "   bit_depth: 10" in lines
    assert "      colour: matrix bt709, primaries bt709, transfer bt709, range pc" in lines

    folder = make_frame_folder(tmp_path / "frames", frames=2, size=(16, 12))
    assert main(["info", str(folder), "--json"]) == 0
    fields = json.loads(capfd.readouterr().out)
    assert (fields["codec"], fields["pix_fmt"], fields["bit_depth"]) == (None, "rgb24", 8)
    assert fields["colour"] is None  # RGB frames: no YUV matrix
