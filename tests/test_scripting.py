"""What a shell script gets: the paths written on stdout (one per line, the main output first),
everything else on stderr, nothing but errors there with --quiet, one JSON object with --json,
and `wdiff info` / `wdiff --help` without importing torch."""

import json
import subprocess
import sys

import pytest
from media import make_clip

from wdiff.cli import main


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12), audio=False)


def upscale(clip, model, out, *more):
    args = ["upscale", str(clip), "--scale", "2", "--steps", "2", "--model", str(model)]
    return [*args, "--no-cache", "-o", str(out), *more]


def test_quiet_upscale_prints_exactly_the_output_path(tmp_path, clip, sr_model, capfd):
    out = tmp_path / "up.mp4"
    assert main(["--device", "cpu", "--quiet", *upscale(clip, sr_model, out)]) == 0
    captured = capfd.readouterr()
    assert captured.out == f"{out}\n"
    assert captured.err == ""
    assert out.is_file()


def test_the_output_path_is_the_only_stdout_line_without_quiet(tmp_path, clip, sr_model, capfd):
    out = tmp_path / "up.mp4"
    assert main(["--device", "cpu", *upscale(clip, sr_model, out)]) == 0
    captured = capfd.readouterr()
    assert captured.out.splitlines() == [str(out)]
    assert f"wrote {out}" in captured.err and "s/frame" in captured.err  # the human note


def test_json_gives_one_object_naming_the_output(tmp_path, clip, sr_model, capfd):
    out = tmp_path / "up.mp4"
    assert main(["--device", "cpu", *upscale(clip, sr_model, out, "--json")]) == 0
    captured = capfd.readouterr()
    assert len(captured.out.strip().splitlines()) == 1
    summary = json.loads(captured.out)
    assert summary["output"] == str(out)
    assert summary["report"] == str(tmp_path / "up.report.json")
    assert summary["frames_csv"] == str(tmp_path / "up.frames.csv")
    assert summary["frames"] == 3
    assert summary["output_size"] == {"width": 32, "height": 24}
    assert summary["mean_warping_error_previous"] >= 0 and summary["seconds_per_frame"] >= 0


def test_degrade_prints_its_output_path(tmp_path, clip, capfd):
    out = tmp_path / "small.mp4"
    assert main(["degrade", str(clip), "--scale", "2", "-o", str(out)]) == 0
    captured = capfd.readouterr()
    assert captured.out == f"{out}\n"
    assert "8x6" in captured.err
    assert (
        main(["--quiet", "degrade", str(clip), "--scale", "2", "-o", str(out), "--overwrite"]) == 0
    )
    assert capfd.readouterr() == (f"{out}\n", "")


def test_flow_prints_the_flows_then_the_picture(tmp_path, clip, capfd):
    out, viz = tmp_path / "f.safetensors", tmp_path / "viz.mp4"
    args = ["--device", "cpu", "flow", str(clip), "-o", str(out), "--viz", str(viz)]
    assert main([*args, "--cache-dir", str(tmp_path / "cache")]) == 0
    assert capfd.readouterr().out.splitlines() == [str(out), str(viz)]
    again = ["--quiet", *args, "--cache-dir", str(tmp_path / "cache"), "--overwrite"]
    assert main(again) == 0  # from the cache: the note about it is stderr's, and quiet
    assert capfd.readouterr() == (f"{out}\n{viz}\n", "")


def test_errors_have_one_prefix(tmp_path, capfd):
    assert main(["upscale", "in.mp4", "--scale", "nine"]) == 2  # a usage error
    err = capfd.readouterr().err
    assert err.startswith("wdiff: error: ") and "'wdiff upscale --help'" in err
    assert main(["info", str(tmp_path / "missing.mp4")]) == 2  # a WdiffError
    assert capfd.readouterr() == (
        "",
        f"wdiff: error: {tmp_path / 'missing.mp4'}: no such file or folder; check the path\n",
    )


def imported_modules(*args):
    """The modules `python -X importtime -m wdiff ARGS` imports, and its stdout."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wdiff", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return names, run.stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_info_does_not_import_torch(clip, as_json):
    names, out = imported_modules("info", *(["--json"] if as_json else []), str(clip))
    assert "wdiff.cli" in names  # the listing is real
    assert not {name for name in names if name.split(".")[0] in ("torch", "cv2", "diffusers")}
    if as_json:  # the pixels and colour too
        fields = json.loads(out)
        assert (fields["frames"], fields["bit_depth"], fields["codec"]) == (3, 8, "h264")
        assert fields["colour"]["matrix"] == "smpte170m"  # untagged, small: as players guess
    else:
        assert "frames: 3" in out and "pix_fmt: yuv420p" in out and "matrix smpte170m" in out


def test_help_does_not_import_torch():
    names, out = imported_modules("--help")
    assert "upscale" in out
    assert not {name for name in names if name.split(".")[0] == "torch"}
