"""Presets and --print-config; resume after kill -9 gives the uninterrupted result; memory does
not grow with the clip's length."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from media import make_clip
from processes import start_wdiff

from wdiff.cli import main
from wdiff.config import RestoreSettings, load_preset, merge_settings, preset_names
from wdiff.resume import STATE_FILE, resume_folder
from wdiff.video import open_video


def test_every_preset_loads_and_validates():
    names = preset_names()
    assert {
        "upscale-8x",
        "upscale-4x",
        "inpaint",
        "fast",
        "sdxl-upscale-8x",
        "sdxl-inpaint",
    } <= set(names)
    for name in names:
        values = load_preset(name)
        tasks = [values["task"]] if "task" in values else ["sr", "inpaint"]
        for task in tasks:
            given = {"model": "/models/sdxl"} if values.get("model") == "sdxl" else {}
            settings = merge_settings(task, name, given)
            assert settings.task == task
            for key, value in values.items():
                if key not in given:
                    assert getattr(settings, key) == value, (name, key)


def test_command_line_overrides_preset_and_print_config(capsys):
    assert (
        main(["upscale", "in.mp4", "--preset", "upscale-4x", "--steps", "7", "--print-config"]) == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["preset"] == "upscale-4x" and printed["scale"] == 4  # from the preset
    assert printed["steps"] == 7  # from the command line
    assert printed["guidance_mode"] == RestoreSettings().guidance_mode  # the default
    assert printed["output"].endswith("in.x4-warped-gp.mp4")


def test_print_config_shows_only_the_tasks_settings(capsys):
    assert main(["inpaint", "in.mp4", "--mask", "m.png", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert "scale" not in printed and "noise_level" not in printed
    assert {"mask_dilate", "feather", "steps"} <= set(printed)
    assert main(["upscale", "in.mp4", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert "feather" not in printed and printed["scale"] == 8


def test_bad_presets_exit_2_naming_the_problem(tmp_path, capfd):
    bad = tmp_path / "mine.yaml"
    bad.write_text("steps: many\n")
    assert main(["upscale", "in.mp4", "--preset", str(bad), "--print-config"]) == 2
    assert "mine.yaml" in capfd.readouterr().err
    bad.write_text("stepz: 10\n")
    assert main(["upscale", "in.mp4", "--preset", str(bad), "--print-config"]) == 2
    assert "stepz" in capfd.readouterr().err
    assert main(["upscale", "in.mp4", "--preset", "inpaint", "--print-config"]) == 2
    assert "wdiff inpaint" in capfd.readouterr().err
    assert main(["upscale", "in.mp4", "--preset", "sdxl-upscale-8x", "--print-config"]) == 2
    assert "--model" in capfd.readouterr().err


def _frames_done(output) -> int:
    from safetensors import safe_open

    path = resume_folder(output) / STATE_FILE
    try:
        with safe_open(str(path), framework="pt") as handle:
            return int(handle.metadata()["frames_done"])
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_video(tmp_path, sr_model, capfd):
    frames = 24
    clip = make_clip(tmp_path / "low.mp4", frames=frames, size=(48, 32))
    common = ["upscale", str(clip), "--scale", "2", "--steps", "6", "--model", str(sr_model)]
    common += ["--first-guidance", "0.5", "--no-cache", "--quiet"]
    _kill_resume_and_compare(tmp_path, common, frames, kill_after=3, capfd=capfd)


@pytest.mark.slow  # about 12 s on 2 idle cores
def test_batch_consistent_resumes_from_its_last_finished_window(tmp_path, sr_model, capfd):
    """Windows are independent: the state is kept at each window's end (8 frames), and a killed
    run resumes at the first frame of the window it was in."""
    frames = 24
    clip = make_clip(tmp_path / "low.mp4", frames=frames, size=(48, 32))
    common = ["upscale", str(clip), "--scale", "2", "--steps", "6", "--model", str(sr_model)]
    common += ["--sampler", "batch-consistent", "--no-cache", "--quiet"]
    done = _kill_resume_and_compare(tmp_path, common, frames, kill_after=8, capfd=capfd)
    assert done % 8 == 0


@pytest.mark.slow  # about 12 s on 2 idle cores
def test_ctrl_c_says_what_is_kept_and_how_to_continue(tmp_path, sr_model):
    clip = make_clip(tmp_path / "low.mp4", frames=24, size=(48, 32), audio=False)
    out = tmp_path / "out.mp4"
    args = ["upscale", str(clip), "--scale", "2", "--steps", "6", "--model", str(sr_model)]
    process = start_wdiff(
        [*args, "--no-cache", "--quiet", "-o", str(out)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while _frames_done(out) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    lines = process.communicate(timeout=60)[1].strip().splitlines()
    done = _frames_done(out)
    assert process.returncode == 130 and not out.exists()
    assert 2 <= done < 24, "the interrupt has to land mid-run for this test to mean much"
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"{done} finished frames kept" in lines[0] and "--resume" in lines[0]


def _kill_resume_and_compare(tmp_path, common, frames: int, kill_after: int, capfd) -> int:
    """Run ``common`` whole, then kill -9 a second run once ``kill_after`` frames are done,
    check the refusals, resume it, and compare video and report; the frames done at the kill."""
    whole = tmp_path / "whole.mp4"
    assert main([*common, "-o", str(whole)]) == 0

    out = tmp_path / "out.mp4"
    process = start_wdiff(
        [*common, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while _frames_done(out) < kill_after and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = _frames_done(out)
    assert process.returncode == -signal.SIGKILL and not out.exists()
    assert kill_after <= done < frames, "the kill has to land mid-run for this test to mean much"

    assert main([*common, "-o", str(out)]) == 2  # state left behind: asks for --resume
    assert "--resume" in capfd.readouterr().err
    assert main([*common, "-o", str(out), "--steps", "5", "--resume"]) == 2
    assert "settings" in capfd.readouterr().err

    from safetensors import safe_open

    with safe_open(str(resume_folder(out) / STATE_FILE), framework="pt") as handle:
        saved_rows = json.loads(handle.metadata()["rows"])
    assert main([*common, "-o", str(out), "--resume"]) == 0
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["frames"][:done] == saved_rows  # those frames were kept, not sampled again
    ours = np.stack(list(open_video(out).frames()))
    reference = np.stack(list(open_video(whole).frames()))
    assert ours.shape == reference.shape and np.array_equal(ours, reference)
    # and the file itself: the kept frames are re-encoded with the rest, so the resumed video
    # is byte for byte the uninterrupted one
    assert out.read_bytes() == whole.read_bytes(), "resumed and uninterrupted bytes differ"
    assert not resume_folder(out).exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    whole_report = json.loads((tmp_path / "whole.report.json").read_text())
    assert len(report["frames"]) == frames
    for key in ("warping_error_previous", "warping_error_first"):
        assert [r[key] for r in report["frames"]] == [r[key] for r in whole_report["frames"]]
    return done


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_frame_count(tmp_path, sr_model):
    """Nothing is held per frame: neither frames nor predictions, nor the GP noise's tiles. A
    pan (4 pixels a frame: 16 cells of the 4x output's noise grid) moves the noise's positions
    over new ground every frame, and the tiles built there were all held until #18 (some
    10 MB a frame: 1.43 GiB for 16 frames, 1.90 for 64)."""
    peaks = {}
    for frames in (16, 64):
        clip = make_clip(
            tmp_path / f"c{frames}.mp4", frames=frames, size=(64, 48), audio=False, speed=4
        )
        out = tmp_path / f"o{frames}.mp4"
        args = ["upscale", str(clip), "--scale", "4", "--steps", "1", "--model", str(sr_model)]
        subprocess.run(
            [sys.executable, "-m", "wdiff", *args, "-o", str(out), "--no-cache", "--quiet"],
            check=True,
            env={**os.environ, "TMPDIR": str(tmp_path)},  # the flows' and tiles' scratch files
        )
        report = json.loads((tmp_path / f"o{frames}.report.json").read_text())
        assert report["settings"]["noise"] == "gp"
        peaks[frames] = report["peak_memory"]["cpu_max_rss_gib"]
    assert peaks[64] <= 1.10 * peaks[16], peaks
