"""Same input, same settings, same seed: the same bytes.

The writer is checked on its own (several encodes of the same frames, some at once, so they
run under load), then ``wdiff upscale`` and ``wdiff inpaint`` end to end: two runs give
byte-identical videos and reports that differ only in their timings and memory figures.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import make_clip, make_frame_folder
from PIL import Image

from wdiff.cli import main
from wdiff.video import VideoWriter, open_video

ENCODES = 6
# what a report may differ in between two identical runs: wall-clock times and memory peaks
TIMING_KEYS = ("seconds", "seconds_per_frame", "peak_memory")
ROW_TIMING_KEYS = ("seconds",)


def random_frames(size: tuple[int, int], count: int = 12) -> np.ndarray:
    """Varied content: noise, flat frames, hard edges and a gradient, from a fixed seed."""
    width, height = size
    rng = np.random.default_rng(1234)
    frames = rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    frames[3] = 0
    frames[4] = 255
    frames[5, :, : width // 2] = (255, 0, 0)
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    frames[6] = ramp.astype(np.uint8)[None, :, None]
    frames[7] = np.roll(frames[2], 3, axis=1)  # motion
    return frames


def smooth_moving_frames(size: tuple[int, int], count: int = 8) -> np.ndarray:
    """Smooth waves drifting and brightening: content x264 predicts with motion and weights
    (on noise and flat frames its AVX-512 over-read did not show)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        red = 128 + 60 * np.sin((x + 3 * i) / 7) * np.cos(y / 9)
        green = 128 + 50 * np.cos((x - 2 * i) / 5 + y / 11)
        blue = 100 + 40 * np.sin((y + i) / 6)
        frames.append(np.stack([red, green, blue], -1) * (1 + 0.03 * i))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def encode(path: Path, frames: np.ndarray) -> Path:
    with VideoWriter(path, Fraction(24)) as writer:
        writer.write(frames[:5])  # a chunk, then single frames
        for frame in frames[5:]:
            writer.write(frame)
    return path


def first_difference(a: bytes, b: bytes) -> str:
    """Where two files part, for the failure message."""
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"first differing byte at offset {offset} of {len(a)}/{len(b)} bytes"
    return f"one is a prefix of the other ({len(a)} vs {len(b)} bytes)"


def assert_same_bytes(paths: list[Path]) -> None:
    reference = paths[0].read_bytes()
    for path in paths[1:]:
        data = path.read_bytes()
        assert data == reference, f"{path.name} != {paths[0].name}: " + first_difference(
            reference, data
        )


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
@pytest.mark.parametrize("size", [(320, 176), (97, 61)])
def test_the_writer_gives_the_same_bytes_for_the_same_frames(tmp_path, size, suffix):
    frames = random_frames(size)
    # half one after another, half at once: concurrent encoders load the two cores, the
    # condition under which swscale's slice threading used to round differently
    paths = [encode(tmp_path / f"seq{i}{suffix}", frames) for i in range(ENCODES // 2)]
    with ThreadPoolExecutor(max_workers=ENCODES // 2) as pool:
        jobs = [
            pool.submit(encode, tmp_path / f"par{i}{suffix}", frames)
            for i in range(ENCODES - ENCODES // 2)
        ]
        paths += [job.result() for job in jobs]
    assert_same_bytes(paths)
    back = open_video(paths[0])
    assert back.info.size == size and back.info.frame_count == len(frames)


ENCODE_IN_CHILD = """
import sys
from pathlib import Path
import numpy as np
from fractions import Fraction
from wdiff.video import VideoWriter
frames = np.load(sys.argv[1])
with VideoWriter(Path(sys.argv[2]), Fraction(24)) as writer:
    writer.write(frames)
"""


@pytest.mark.parametrize("size", [(96, 64), (97, 61)])
def test_the_writer_does_not_depend_on_what_the_heap_held(tmp_path, size):
    """x264's AVX-512 code read memory it never wrote (its output followed glibc's
    MALLOC_PERTURB_ fill, and whatever torch had left in the heap): children whose heaps are
    filled with different bytes must write the same file."""
    import os
    import subprocess
    import sys

    frames = tmp_path / "frames.npy"
    np.save(frames, smooth_moving_frames(size))
    paths = []
    for fill in (0, 1, 85, 170, 255):
        path = tmp_path / f"heap{fill}.mp4"
        env = os.environ | {"MALLOC_PERTURB_": str(fill)}
        subprocess.run(
            [sys.executable, "-c", ENCODE_IN_CHILD, str(frames), str(path)], env=env, check=True
        )
        paths.append(path)
    assert_same_bytes(paths)


def test_x264_is_kept_below_avx512():
    from wdiff.video.x264 import asm_below_avx512

    assert asm_below_avx512({"sse", "sse2", "avx2"}) is None  # no AVX-512: x264 detects
    asm = asm_below_avx512({"mmxext", "sse", "sse2", "pni", "ssse3", "avx", "avx2", "avx512f"})
    assert asm == "MMX2,SSE,SSE2,SSE3,SSSE3,AVX,AVX2"


def strip_timings(report: dict) -> dict:
    report = dict(report)
    for key in TIMING_KEYS:
        assert key in report, key  # a renamed timing field must be renamed here too
        del report[key]
    output = report["output"]  # the two runs write to two folders
    report["output"] = Path(output).name
    report["command_line"] = [Path(a).name if a == output else a for a in report["command_line"]]
    rows = []
    for row in report["frames"]:
        row = dict(row)
        for key in ROW_TIMING_KEYS:
            del row[key]
        rows.append(row)
    report["frames"] = rows
    return report


def run_twice(tmp_path: Path, args: list[str], name: str = "out.mp4") -> tuple[Path, Path]:
    """Run the command into two folders; the outputs must be byte-identical and the reports
    equal but for timings. Returns the two outputs."""
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        out = folder / name
        command = ["--device", "cpu", "--seed", "7", "--quiet", *args]
        assert main([*command, "--no-cache", "-o", str(out)]) == 0
        outputs.append(out)
    assert_same_bytes(outputs)
    stem = Path(name).stem
    reports = [json.loads((out.parent / f"{stem}.report.json").read_text()) for out in outputs]
    assert strip_timings(reports[0]) == strip_timings(reports[1])
    assert reports[0]["settings"]["seed"] == 7
    return outputs[0], outputs[1]


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
@pytest.mark.parametrize("method", ["warped", "batch-consistent"])
def test_upscale_twice_gives_the_same_bytes_and_report(tmp_path, sr_model, method):
    # with audio (copied alongside); 10 frames make batch-consistent's second window partial
    clip = make_clip(tmp_path / "low.mp4", frames=10, size=(26, 18))
    args = ["upscale", str(clip), "--scale", "2", "--steps", "2", "--model", str(sr_model)]
    first, _ = run_twice(tmp_path, [*args, "--sampler", method])
    info = open_video(first).info
    assert (info.width, info.height, info.frame_count, info.has_audio) == (52, 36, 10, True)


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
@pytest.mark.parametrize("method", ["warped", "batch-consistent"])
def test_inpaint_twice_gives_the_same_bytes_and_report(tmp_path, inpaint_model, method):
    # a frame folder of an odd size: the output is encoded padded to even and tagged
    clip = make_frame_folder(tmp_path / "in", frames=10, size=(25, 17))
    mask = np.zeros((17, 25), np.uint8)
    mask[4:12, 6:18] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    args = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png")]
    args += ["--model", str(inpaint_model), "--steps", "2", "--sampler", method]
    first, second = run_twice(tmp_path, args)
    decoded = [np.stack(list(open_video(path).frames())) for path in (first, second)]
    assert decoded[0].shape == (10, 17, 25, 3) and np.array_equal(*decoded)
