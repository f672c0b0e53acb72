"""The bad-input corpus: every case exits 2 with one line naming the file, and writes nothing."""

import subprocess
import sys

import av
import numpy as np
import pytest
from media import make_clip, make_frame_folder
from PIL import Image

from wdiff.cli import main


def missing(tmp):
    return ["flow", str(tmp / "nowhere.mp4")], "nowhere.mp4"


def empty(tmp):
    (tmp / "empty.mp4").write_bytes(b"")
    return ["flow", str(tmp / "empty.mp4")], "empty.mp4"


def text_named_mp4(tmp):
    (tmp / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    return ["flow", str(tmp / "notes.mp4")], "notes.mp4"


def truncated(tmp):
    data = make_clip(tmp / "whole.mp4", frames=24).read_bytes()
    (tmp / "cut.mp4").write_bytes(data[: len(data) // 3])
    (tmp / "whole.mp4").unlink()
    return ["flow", str(tmp / "cut.mp4")], "cut.mp4"


def audio_only(tmp):
    make_clip(tmp / "song.m4a", video=False)
    return ["flow", str(tmp / "song.m4a")], "song.m4a"


def zero_frames(tmp):
    container = av.open(str(tmp / "none.mkv"), "w")
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()
    return ["flow", str(tmp / "none.mkv")], "none.mkv"


def single_frame(tmp):
    make_clip(tmp / "still.mp4", frames=1, audio=False)
    return ["flow", str(tmp / "still.mp4")], "still.mp4"


def frames_of_odd_sizes(tmp):
    folder = make_frame_folder(tmp / "frames", frames=4)
    Image.fromarray(np.zeros((47, 65, 3), np.uint8)).save(folder / "frame_3.png")
    return ["flow", str(folder)], "frame_3.png"


def sixteen_bit_frames(tmp):
    folder = tmp / "deep"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((48, 64), 1000 * index, np.uint16)).save(folder / f"{index}.png")
    return ["flow", str(folder)], "0.png"


def grayscale_frames(tmp):
    folder = tmp / "gray"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((48, 64), 40 * index, np.uint8)).save(folder / f"{index}.png")
    return ["flow", str(folder)], "0.png"


def alpha_frames(tmp):
    folder = tmp / "alpha"
    folder.mkdir()
    for index in range(3):
        rgba = np.full((48, 64, 4), 40 * index, np.uint8)
        Image.fromarray(rgba, mode="RGBA").save(folder / f"{index}.png")
    return ["flow", str(folder)], "0.png"


def mask_of_wrong_size(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp / "small_mask.png")
    return ["flow", str(clip), "--mask", str(tmp / "small_mask.png")], "small_mask.png"


def mask_with_wrong_count(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    make_clip(tmp / "long_mask.mp4", frames=7, audio=False)
    return ["flow", str(clip), "--mask", str(tmp / "long_mask.mp4")], "long_mask.mp4"


def output_is_input(tmp):
    clip = make_clip(tmp / "same.mp4", frames=4, audio=False)
    return ["flow", str(clip), "-o", str(clip)], "same.mp4"


def output_exists(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    (tmp / "taken.safetensors").write_bytes(b"precious")
    return ["flow", str(clip), "-o", str(tmp / "taken.safetensors")], "taken.safetensors"


def output_folder_missing(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["flow", str(clip), "-o", str(tmp / "no" / "such" / "f.safetensors")], "f.safetensors"


def bad_device(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["--device", "cuda:7", "flow", str(clip)], "cuda:7"


def viz_with_unknown_extension(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["flow", str(clip), "--viz", str(tmp / "viz.gif")], "viz.gif"


def image_output_for_a_video(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["upscale", str(clip), "--scale", "2", "-o", str(tmp / "big.png")], "big.png"


def reference_of_another_length(tmp):
    clip = make_clip(tmp / "out.mp4", frames=6, audio=False)
    truth = make_clip(tmp / "truth.mp4", frames=4, audio=False)
    return ["eval", str(clip), "--reference", str(truth)], "truth.mp4: has 4 frames"


CASES = [
    missing,
    empty,
    text_named_mp4,
    truncated,
    audio_only,
    zero_frames,
    single_frame,
    frames_of_odd_sizes,
    sixteen_bit_frames,
    grayscale_frames,
    alpha_frames,
    mask_of_wrong_size,
    mask_with_wrong_count,
    output_is_input,
    output_exists,
    output_folder_missing,
    bad_device,
    viz_with_unknown_extension,
    image_output_for_a_video,
    reference_of_another_length,
]


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_bad_input_gives_one_line_exit_2_and_no_output(tmp_path, monkeypatch, capfd, case):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    args, names = case(work)
    before = snapshot(tmp_path)
    code = main(["--device", "cpu", *args] if args[0] != "--device" else args)
    captured = capfd.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert names in lines[0] and "Traceback" not in captured.err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


@pytest.mark.slow
def test_the_installed_script_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wdiff", "flow", str(tmp_path / "missing.mp4")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing.mp4" in result.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "wdiff", "--debug", "flow", str(tmp_path / "missing.mp4")],
        capture_output=True,
        text=True,
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr
