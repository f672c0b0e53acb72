"""Many videos in one command (issue #18): one output per input into -o's folder, a summary on
stderr, the outputs' paths on stdout, a failing input that does not stop the others, masks per
input, --resume skipping finished outputs; and under a launcher, two processes sharing four
clips, their outputs byte for byte a one-process run's, killed and resumed alike."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media import make_clip
from PIL import Image

from wdiff.cli import main
from wdiff.resume import STATE_FILE, resume_folder

FAST = ["--scale", "2", "--steps", "1", "--no-cache"]
RESULT = "x2-warped-gp.mp4"


def upscale(model: Path, *args: str) -> list[str]:
    return ["--device", "cpu", "upscale", *args, *FAST, "--model", str(model)]


def clips(folder: Path, names: str = "ab", frames: int = 3) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [
        make_clip(folder / f"{name}.mp4", frames=frames + i, size=(16, 12), audio=False)
        for i, name in enumerate(names)
    ]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("wdiff: error:")]


def test_two_inputs_two_outputs_a_summary_and_exit_0(tmp_path, sr_model, capfd, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the table's rows on one line each
    a, b = clips(tmp_path / "in")
    out = tmp_path / "out" / "deeper"  # made, parents too
    assert main(upscale(sr_model, str(a), str(b), "-o", str(out))) == 0
    captured = capfd.readouterr()
    written = [out / f"a.{RESULT}", out / f"b.{RESULT}"]
    assert captured.out.splitlines() == [str(path) for path in written]
    assert all(path.is_file() for path in written)
    assert all((out / f"{n}.x2-warped-gp.report.json").is_file() for n in "ab")
    assert "2 done, 0 skipped, 0 failed" in captured.err and not error_lines(captured.err)
    for row in ("a.mp4", "b.mp4"):  # the table names each input with its frames
        assert any(row in line and "done" in line for line in captured.err.splitlines())
    # each output is the one a single-input run writes
    alone = tmp_path / "alone.mp4"
    assert main(["--quiet", *upscale(sr_model, str(b), "-o", str(alone))]) == 0
    assert alone.read_bytes() == written[1].read_bytes()


def test_a_batch_loads_its_model_once(tmp_path, sr_model, model_loads):
    """Inputs that share the model load it once (#18); a failed input in between does not make
    the next one load it again. Each output is still a single run's (the test above)."""
    a, b = clips(tmp_path / "in")
    bad = tmp_path / "in" / "bad.mp4"
    bad.write_bytes(b"not a video")
    args = upscale(sr_model, str(a), str(bad), str(b), "-o", str(tmp_path / "out"), "--quiet")
    assert main(args) == 2
    assert model_loads == [str(sr_model)]
    assert main(["--quiet", *upscale(sr_model, str(a), "-o", str(tmp_path / "a.mp4"))]) == 0
    assert len(model_loads) == 2  # a single input model_loads its own


def test_a_bad_input_among_good_ones(tmp_path, sr_model, capfd):
    a, b = clips(tmp_path)
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    code = main(upscale(sr_model, str(a), str(bad), str(b), "-o", str(tmp_path / "out")))
    captured = capfd.readouterr()
    assert code == 2
    assert (tmp_path / "out" / f"a.{RESULT}").is_file()
    assert (tmp_path / "out" / f"b.{RESULT}").is_file()
    assert not (tmp_path / "out" / f"broken.{RESULT}").exists()
    (line,) = error_lines(captured.err)
    assert "broken.mp4" in line and "Traceback" not in captured.err
    assert len(captured.out.splitlines()) == 2 and "broken" not in captured.out
    assert "2 done, 0 skipped, 1 failed" in captured.err


def test_output_that_is_a_file_with_several_inputs_is_one_line(tmp_path, sr_model, capfd):
    a, b = clips(tmp_path)
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"mine")
    assert main(upscale(sr_model, str(a), str(b), "-o", str(taken))) == 2
    err = capfd.readouterr().err
    assert error_lines(err) == err.strip().splitlines() and len(err.strip().splitlines()) == 1
    assert "taken.mp4" in err and "folder" in err
    assert taken.read_bytes() == b"mine"
    assert main(upscale(sr_model, str(a), str(b), "-o", str(tmp_path / "new.mp4"))) == 2
    assert "folder" in capfd.readouterr().err and not (tmp_path / "new.mp4").exists()


def test_two_inputs_to_the_same_output_are_refused_before_any_work(tmp_path, sr_model, capfd):
    (a,) = clips(tmp_path / "one", "a")
    (other,) = clips(tmp_path / "two", "a")
    assert main(upscale(sr_model, str(a), str(other), "-o", str(tmp_path / "out"))) == 2
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert "both be written" in line and not (tmp_path / "out").exists()


def test_a_folder_of_videos_is_its_videos_a_folder_of_frames_one_video(tmp_path, sr_model, capfd):
    a, b = clips(tmp_path / "videos")
    (tmp_path / "videos" / "a.x4-warped-gp.mp4").write_bytes(a.read_bytes())  # a result: left out
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    assert main(["--quiet", *upscale(sr_model, str(tmp_path / "videos"))]) == 0
    beside = [tmp_path / "videos" / f"{n}.{RESULT}" for n in "ab"]
    assert capfd.readouterr().out.splitlines() == [str(path) for path in beside]
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        Image.fromarray(np.full((12, 16, 3), 40 * index, np.uint8)).save(frames / f"{index}.png")
    out = tmp_path / "frames-out.mp4"  # one video: -o is its file, as always
    assert main(["--quiet", *upscale(sr_model, str(frames), "-o", str(out))]) == 0
    assert capfd.readouterr().out == f"{out}\n" and out.is_file()


def test_json_gives_one_object_per_input(tmp_path, sr_model, capfd):
    a, b = clips(tmp_path)
    bad = tmp_path / "missing.mp4"
    out = tmp_path / "out"
    args = upscale(sr_model, str(a), str(bad), str(b), "-o", str(out), "--json", "--quiet")
    assert main(args) == 2
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [line["status"] for line in lines] == ["done", "failed", "done"]
    assert [line["source"] for line in lines] == [str(a), str(bad), str(b)]
    assert lines[0]["output"] == str(out / f"a.{RESULT}") and lines[2]["frames"] == 4
    assert lines[0]["report"] == str(out / "a.x2-warped-gp.report.json")
    assert "missing.mp4" in lines[1]["error"]


def test_resume_skips_finished_outputs(tmp_path, sr_model, capfd):
    a, b = clips(tmp_path)
    out = tmp_path / "out"
    assert main(["--quiet", *upscale(sr_model, str(a), str(b), "-o", str(out))]) == 0
    first = capfd.readouterr().out
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    assert main(upscale(sr_model, str(a), str(b), "-o", str(out), "--resume")) == 0
    captured = capfd.readouterr()
    assert captured.out == first  # the finished outputs are still the results
    assert "0 done, 2 skipped, 0 failed" in captured.err
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    # without --resume (or --overwrite) every existing output is a failure naming the fix
    assert main(upscale(sr_model, str(a), str(b), "-o", str(out))) == 2
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 2 and all("--overwrite" in line for line in lines)


def box_mask(path: Path, top: int) -> Path:
    hole = np.zeros((12, 16), np.uint8)
    hole[top : top + 4, 4:10] = 255
    Image.fromarray(hole).save(path)
    return path


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
def test_masks_once_for_all_per_input_or_by_name(tmp_path, inpaint_model, capfd):
    a, b = clips(tmp_path / "in")
    upper, lower = box_mask(tmp_path / "upper.png", 1), box_mask(tmp_path / "lower.png", 7)
    base = ["--quiet", "--device", "cpu", "inpaint", "--steps", "1", "--no-cache"]
    base += ["--model", str(inpaint_model)]

    def run(*args: str) -> int:
        return main([*base, *args])

    name = "inpainted-warped-gp.mp4"
    assert run(str(b), "--mask", str(lower), "-o", str(tmp_path / "b-lower.mp4")) == 0
    assert run(str(b), "--mask", str(upper), "-o", str(tmp_path / "b-upper.mp4")) == 0
    b_lower, b_upper = ((tmp_path / f"b-{m}.mp4").read_bytes() for m in ("lower", "upper"))
    assert b_lower != b_upper  # the mask matters, so the pairing below is tested
    # one for all
    assert run(str(a), str(b), "--mask", str(upper), "-o", str(tmp_path / "all")) == 0
    assert (tmp_path / "all" / f"b.{name}").read_bytes() == b_upper
    # one per input, in order
    args = [str(a), str(b), "--mask", str(upper), "--mask", str(lower)]
    assert run(*args, "-o", str(tmp_path / "each")) == 0
    assert (tmp_path / "each" / f"b.{name}").read_bytes() == b_lower
    # a folder of masks named after the inputs; an input without one fails alone
    masks = tmp_path / "masks"
    masks.mkdir()
    box_mask(masks / "b.png", 7)
    capfd.readouterr()
    assert run(str(a), str(b), "--mask", str(masks), "-o", str(tmp_path / "named")) == 2
    (line,) = error_lines(capfd.readouterr().err)
    assert "a.mp4" in line and "no mask named a" in line
    assert (tmp_path / "named" / f"b.{name}").read_bytes() == b_lower
    # a count that fits neither rule
    assert (
        run(str(a), str(b), "--mask", str(upper), "--mask", str(lower), "--mask", str(upper)) == 2
    )
    assert "--mask given 3 times for 2 inputs" in capfd.readouterr().err


def test_print_config_prints_each_input(tmp_path, sr_model, capfd):
    a, b = clips(tmp_path)
    args = upscale(sr_model, str(a), str(b), "-o", str(tmp_path / "out"), "--print-config")
    assert main(args) == 0
    out = capfd.readouterr().out
    assert out.count("---\n") == 1 and str(tmp_path / "out" / f"b.{RESULT}") in out
    assert not (tmp_path / "out").exists()


# Two processes under a launcher, on the CPU. `accelerate launch --cpu --num_processes 2` starts
# one process unless mpirun runs them; `--multi_gpu` starts them with torchrun's launcher, and
# wdiff joins them with gloo where torch sees no GPU.
def launcher_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def accelerate(port: int) -> list[str]:
    launcher = Path(sys.executable).with_name("accelerate")
    return [
        *(str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"),
        *("--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)),
    ]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def four_clips(tmp_path: Path, frames: int) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for index, name in enumerate("abcd"):
        make_clip(folder / f"{name}.mp4", frames=frames + index, size=(24, 16), audio=False)
    return folder


def wdiff_args(model: Path, folder: Path, out: Path, *more: str) -> list[str]:
    return ["upscale", str(folder), *FAST, "--model", str(model), "-o", str(out), *more]


def one_process(tmp_path: Path, model: Path, folder: Path) -> Path:
    out = tmp_path / "one"
    command = [sys.executable, "-m", "wdiff", *wdiff_args(model, folder, out, "--quiet")]
    subprocess.run(command, check=True, env=launcher_env(tmp_path), capture_output=True)
    return out


def same_outputs(ours: Path, reference: Path) -> None:
    names = sorted(path.name for path in reference.glob("*.mp4"))
    assert names == sorted(path.name for path in ours.glob("*.mp4")) and len(names) == 4
    for name in names:
        assert (ours / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.slow  # about 40 s on 2 busy cores
def test_two_processes_share_four_clips_as_one_process_would(tmp_path, sr_model):
    folder = four_clips(tmp_path, frames=3)
    reference = one_process(tmp_path, sr_model, folder)
    out = tmp_path / "two"
    command = [*accelerate(free_port()), "-m", "wdiff", *wdiff_args(sr_model, folder, out)]
    done = subprocess.run(command, env=launcher_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same_outputs(out, reference)
    assert done.stdout.splitlines() == [str(out / f"{n}.{RESULT}") for n in "abcd"]  # once
    # the main process ran the first half (its notes), the other process the rest
    notes = [line.split()[0] for line in done.stderr.splitlines() if line.startswith("[")]
    assert notes == ["[1/4]", "[2/4]"]
    assert done.stderr.count("4 done, 0 skipped, 0 failed") == 1  # one summary
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.yaml"))


def frames_done(output: Path) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(resume_folder(output) / STATE_FILE), framework="pt") as handle:
            return int(handle.metadata()["frames_done"])
    except Exception:  # not written yet, or being replaced
        return 0


def kill_all(launcher: subprocess.Popen) -> None:
    """SIGKILL the launcher's process group and its workers (torchrun starts each worker in a
    session of its own): the run dies as a killed cluster job does."""
    import psutil

    workers = psutil.Process(launcher.pid).children(recursive=True)
    os.killpg(launcher.pid, signal.SIGKILL)
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    launcher.wait()
    psutil.wait_procs(workers, timeout=30)


@pytest.mark.slow  # about 60 s on 2 busy cores
def test_a_killed_two_process_run_resumes_to_the_same_outputs(tmp_path, sr_model):
    folder = four_clips(tmp_path, frames=20)
    reference = one_process(tmp_path, sr_model, folder)
    out = tmp_path / "two"
    command = [*accelerate(free_port()), "-m", "wdiff", *wdiff_args(sr_model, folder, out)]
    launcher = subprocess.Popen(
        command,
        env=launcher_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    outputs = [out / f"{n}.{RESULT}" for n in "abcd"]

    def midway() -> list[Path]:
        return [path for path in outputs if not path.exists() and frames_done(path) >= 2]

    deadline = time.time() + 300
    while time.time() < deadline and launcher.poll() is None:
        if any(path.exists() for path in outputs) and midway():  # one done, one midway
            break
        time.sleep(0.01)
    kill_all(launcher)
    finished = [path for path in outputs if path.exists()]
    assert finished and midway(), "the kill has to land mid-run for this test to mean much"

    resumed = subprocess.run(
        [*accelerate(free_port()), "-m", "wdiff", *wdiff_args(sr_model, folder, out, "--resume")],
        env=launcher_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    same_outputs(out, reference)
    assert f"{4 - len(finished)} done, {len(finished)} skipped" in resumed.stderr  # not rerun
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # no state left


@pytest.mark.slow  # a child importing torch
def test_ctrl_c_stops_the_batch_not_just_the_input(tmp_path, sr_model):
    from processes import start_wdiff

    folder = tmp_path / "clips"
    first, second = clips(folder, frames=12)
    out = tmp_path / "out"
    out.mkdir()
    outputs = [out / f"{name}.{RESULT}" for name in "ab"]
    child = start_wdiff(
        upscale(sr_model, str(first), str(second), "-o", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while frames_done(outputs[0]) < 1 and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=120)[1]
    assert child.returncode == 130, err
    assert not outputs[1].exists() and not resume_folder(outputs[1]).exists(), err
    assert "internal error" not in err and frames_done(outputs[0]) >= 1
