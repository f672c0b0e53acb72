"""Faults while wdiff works: two runs on one output, a cache entry that lies, a full disk at
each write of a run, a kept frame changed behind the run's back, Ctrl-C pressed twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from media import make_clip, pattern
from processes import start_wdiff

from wdiff import flow as flows
from wdiff.cli import main
from wdiff.locks import lock_path, output_lock
from wdiff.resume import STATE_FILE, resume_folder

FRAMES = 6


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "low.mp4", frames=FRAMES, size=(32, 24), audio=False)


def upscale(clip: Path, model: Path, output: Path, *extra: str) -> list[str]:
    """The fastest upscale there is: 32x24 -> 64x48, one step, the tiny random model."""
    args = ["upscale", str(clip), "--scale", "2", "--steps", "1", "--model", str(model)]
    return [*args, "--no-cache", "--quiet", "-o", str(output), *extra]


def frames_done(output: Path) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(resume_folder(output) / STATE_FILE), framework="pt") as handle:
            return int(handle.metadata()["frames_done"])
    except Exception:  # not written yet, or being replaced
        return 0


def no_leftovers(folder: Path) -> list[str]:
    """Temporaries, locks and resume folders left in ``folder`` (should be none)."""
    return [
        p.name
        for p in folder.iterdir()
        if ".partial-" in p.name or p.name.endswith((".lock", ".resume"))
    ]


# --- two runs on one output ----------------------------------------------------------------


@pytest.mark.slow  # two runs of a 6-frame clip, one in a child process
def test_a_second_run_on_the_same_output_is_refused_and_the_first_completes(
    tmp_path, clip, sr_model, capfd
):
    whole = tmp_path / "whole.mp4"
    assert main(upscale(clip, sr_model, whole)) == 0
    out = tmp_path / "out.mp4"
    first = start_wdiff(upscale(clip, sr_model, out), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while frames_done(out) < 1 and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGSTOP)  # held mid-run, lock and all, while the others try
    try:
        assert frames_done(out) >= 1 and first.poll() is None
        capfd.readouterr()
        for extra in ([], ["--overwrite"], ["--resume"]):
            assert main(upscale(clip, sr_model, out, *extra)) == 2
            err = capfd.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"process {first.pid}" in err[0], err
            assert "-o" in err[0]
        assert (resume_folder(out) / STATE_FILE).is_file()  # --overwrite deleted nothing
        assert lock_path(out).read_text().strip() == str(first.pid)  # nor wrote the lock
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=240) == 0, first.stderr.read()
    assert out.read_bytes() == whole.read_bytes()
    assert (tmp_path / "out.report.json").is_file()
    assert no_leftovers(tmp_path) == []


def test_a_run_is_refused_while_the_lock_is_held(tmp_path, clip, sr_model, capfd):
    """The lock held here (another open file, as another process would): refused at once,
    before any work, naming the holder; released, the same command runs."""
    out = tmp_path / "out.mp4"
    with output_lock(out):
        assert main(upscale(clip, sr_model, out)) == 2
        err = capfd.readouterr().err
        assert f"another wdiff run (process {os.getpid()}) is writing it" in err
        assert not resume_folder(out).exists() and not out.exists()
    assert not lock_path(out).exists()
    assert main(upscale(clip, sr_model, out)) == 0
    assert no_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "command",
    [
        ["flow", "{clip}", "--flow", "dis", "--dis-preset", "fast", "-o", "{out}.safetensors"],
        ["warp-noise", "{clip}", "--noise", "fixed", "-o", "{out}.safetensors"],
        ["eval", "{clip}", "--flow", "dis", "--csv", "{out}.csv"],
    ],
    ids=["flow", "warp-noise", "eval"],
)
def test_the_other_commands_lock_their_outputs_too(tmp_path, clip, command, capfd):
    out = tmp_path / "out"
    args = [a.format(clip=clip, out=out) for a in command] + ["--no-cache"]
    target = Path(args[-2])
    with output_lock(target):
        assert main(args) == 2
        assert f"{target}: another wdiff run (process {os.getpid()})" in capfd.readouterr().err
    assert main(args) == 0 and target.is_file()
    assert no_leftovers(tmp_path) == []


def test_a_lock_left_by_a_killed_run_is_taken_over_in_one_line(tmp_path, clip, sr_model, capfd):
    gone = subprocess.Popen(["true"])
    gone.wait()
    out = tmp_path / "out.mp4"
    lock_path(out).write_text(f"{gone.pid}\n")  # a killed run's: no process holds it
    args = upscale(clip, sr_model, out)
    args.remove("--quiet")
    assert main(args) == 0
    err = capfd.readouterr().err.splitlines()
    taken = [line for line in err if "took over the lock" in line]
    assert len(taken) == 1 and f"process {gone.pid}" in taken[0]
    assert out.is_file() and not lock_path(out).exists()


def test_a_refused_run_writes_no_lock(tmp_path, clip, sr_model, capfd):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"not ours")
    assert main(upscale(clip, sr_model, out)) == 2  # exists: needs --overwrite
    assert "--overwrite" in capfd.readouterr().err
    assert not lock_path(out).exists()


# --- kept frames checked ---------------------------------------------------------------------


def interrupt_after(frames: int):
    """``Feedback.frame_bars`` whose frame advance is Ctrl-C once ``frames`` are done."""
    import contextlib

    @contextlib.contextmanager
    def bars(description, total, steps):
        done = 0

        def advance(n=1):
            nonlocal done
            done += n
            if done >= frames:
                raise KeyboardInterrupt

        yield advance, (lambda k: None)

    return bars


def interrupted_run(clip: Path, model: Path, output: Path, frames: int) -> None:
    """A run stopped as by Ctrl-C once ``frames`` frames are done: its state kept."""
    from wdiff.errors import Interrupted
    from wdiff.feedback import Feedback
    from wdiff.restore import plan_restore, run_restore

    given = {"scale": 2, "steps": 1, "model": str(model)}
    job = plan_restore("sr", clip, output, given=given, use_cache=False)
    with pytest.raises(Interrupted, match=f"{frames} finished frames? kept"):
        run_restore(job, feedback=Feedback(frame_bars=interrupt_after(frames)))
    assert frames_done(output) == frames and not lock_path(output).exists()


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
def test_a_kept_frame_changed_since_is_refused(tmp_path, clip, sr_model, capfd):
    whole = tmp_path / "whole.mp4"
    assert main(upscale(clip, sr_model, whole)) == 0
    out = tmp_path / "out.mp4"
    interrupted_run(clip, sr_model, out, 3)
    kept = resume_folder(out) / "frame_000001.png"
    original = kept.read_bytes()
    from PIL import Image

    Image.fromarray(pattern(7, 64, 48)).save(kept)  # another valid frame of the same size
    capfd.readouterr()
    assert main(upscale(clip, sr_model, out, "--resume")) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(kept) in err[0] and "changed" in err[0], err
    assert not out.exists() and frames_done(out) == 3
    kept.write_bytes(original)  # put back: the run continues to the uninterrupted bytes
    assert main(upscale(clip, sr_model, out, "--resume")) == 0
    assert out.read_bytes() == whole.read_bytes()
    assert no_leftovers(tmp_path) == []


# --- a cache entry that lies ---------------------------------------------------------------


def dis():
    return flows.FlowOptions("dis", dis_preset="fast").estimator()


def fields_equal(a, b) -> bool:
    names = ("forward", "backward", "valid_forward", "valid_backward")
    return a.pairs == b.pairs and all(
        torch.equal(getattr(a, n)[:], getattr(b, n)[:]) for n in names
    )


def test_another_clips_flows_under_this_key_are_discarded_and_recomputed(tmp_path, clip):
    from wdiff.video import open_video

    other = make_clip(tmp_path / "other.mp4", frames=FRAMES + 2, size=(40, 24), audio=False)
    reference, _ = flows.estimate_video_flows(open_video(clip), dis())  # no cache
    cache = flows.TensorCache(tmp_path / "cache")
    flows.estimate_video_flows(open_video(clip), dis(), cache=cache)
    (entry,) = (tmp_path / "cache" / "flow").iterdir()
    flows.estimate_video_flows(open_video(other), dis(), cache=cache)
    (forged,) = set((tmp_path / "cache" / "flow").iterdir()) - {entry}
    shutil.copyfile(forged, entry)  # another clip's flows, every checksum valid
    cache = flows.TensorCache(tmp_path / "cache")
    field, hit = flows.estimate_video_flows(open_video(clip), dis(), cache=cache)
    assert not hit and cache.discarded == [entry]
    assert fields_equal(field, reference)
    again, hit = flows.estimate_video_flows(open_video(clip), dis(), cache=cache)  # kept anew
    assert hit and fields_equal(again, reference)


def test_a_folder_where_the_entry_should_be_is_discarded(tmp_path, clip, sr_model, capfd):
    from wdiff.video import open_video

    cache_dir = tmp_path / "cache"
    reference, _ = flows.estimate_video_flows(open_video(clip), dis())
    flows.estimate_video_flows(open_video(clip), dis(), cache=flows.TensorCache(cache_dir))
    (entry,) = (cache_dir / "flow").iterdir()
    entry.unlink()
    (entry / "inside").mkdir(parents=True)
    cache = flows.TensorCache(cache_dir)
    field, hit = flows.estimate_video_flows(open_video(clip), dis(), cache=cache)
    assert not hit and cache.discarded == [entry] and fields_equal(field, reference)
    assert entry.is_file() and [p.name for p in (cache_dir / "flow").iterdir()] == [entry.name]
    # the same through a restore: an entry that is a folder costs nothing but the flows' time
    shutil.rmtree(cache_dir)
    out = tmp_path / "out.mp4"
    args = [a for a in upscale(clip, sr_model, out) if a != "--no-cache"]
    args += ["--cache-dir", str(cache_dir), "--flow", "dis"]
    assert main(args) == 0
    (entry,) = (cache_dir / "flow").iterdir()
    entry.unlink()
    entry.mkdir()
    assert main([*args, "--overwrite"]) == 0, capfd.readouterr().err
    assert entry.is_file() and len(list((cache_dir / "flow").iterdir())) == 1


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def tmpfs():
    """``mount(folder, size)``: a tmpfs there, unmounted after the test (skipped where this
    machine cannot mount one: not root, no CAP_SYS_ADMIN)."""
    mounted = []

    def mount(folder: Path, size: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
        )
        if done.returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def resize(folder: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the disk of ``folder`` to the last byte with one file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for block in (1 << 16, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * block)
            except OSError:
                pass
    return filler


def test_a_full_cache_disk_costs_the_cache_not_the_flows(tmp_path, clip, tmpfs, capfd):
    from PIL import Image

    mask = tmp_path / "mask.png"
    hole = np.zeros((24, 32), np.uint8)
    hole[8:16, 10:20] = 255
    Image.fromarray(hole).save(mask)
    args = ["flow", str(clip), "--mask", str(mask), "--flow", "dis", "--dis-preset", "fast"]
    reference = tmp_path / "reference.safetensors"
    assert main([*args, "--no-cache", "-o", str(reference)]) == 0
    cache_dir = tmpfs(tmp_path / "cache", "256k")
    cached = tmp_path / "cached.safetensors"
    assert main([*args, "--cache-dir", str(cache_dir), "-o", str(cached)]) == 0
    fill(cache_dir)  # the entry is kept; nothing else fits beside it
    out = tmp_path / "out.safetensors"
    capfd.readouterr()
    assert main([*args, "--cache-dir", str(cache_dir), "-o", str(out)]) == 0
    err = capfd.readouterr().err  # read from the cache, completed in the temporary folder
    assert "flows from the cache" in err and "error" not in err and "warning" not in err
    assert out.read_bytes() == reference.read_bytes() == cached.read_bytes()
    shutil.rmtree(cache_dir / "flow")
    (cache_dir / "filler").unlink()
    fill(cache_dir)  # now the entry cannot be written either
    out.unlink()
    assert main([*args, "--cache-dir", str(cache_dir), "-o", str(out)]) == 0
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not cached" in err[0] and "No space" in err[0], err
    assert out.read_bytes() == reference.read_bytes()
    assert list((cache_dir / "flow").iterdir()) == []  # no entry, no partial file


def failed_write(capfd, frames: int) -> str:
    """The one error line of a run that hit a full disk: the name of the file it names."""
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], err
    if frames:
        assert f"--resume (it keeps {frames} finished frame" in err[0], err
    else:
        assert "free some space there or choose another -o" in err[0], err
    return Path(err[0].removeprefix("wdiff: error: ").split(":")[0]).name


@pytest.mark.slow  # ten runs of a 6-frame clip
def test_a_full_disk_at_each_write_then_resume_gives_the_same_bytes(
    tmp_path, clip, sr_model, tmpfs, capfd
):
    """The output's folder and the resume folder each on a small tmpfs, grown after each
    failure: every write of a run (report, CSV, video; frame PNG, state) fails once, says so in
    one line, and ``--resume`` goes on from the last state written to the uninterrupted bytes."""
    whole = tmp_path / "whole.mp4"
    assert main(upscale(clip, sr_model, whole)) == 0
    folder = tmpfs(tmp_path / "disk", "4k")
    out = folder / "out.mp4"
    kept = tmpfs(resume_folder(out), "4m")

    # the output's side: all frames kept, then the report, the CSV and the video fail in turn
    failed, size, extra, used = [], 4096, [], {}
    while main(upscale(clip, sr_model, out, *extra)) != 0:
        failed.append(failed_write(capfd, FRAMES))
        assert frames_done(out) == FRAMES and not out.exists()
        assert sorted(p.name for p in folder.iterdir()) == [kept.name]  # no report, no temporary
        used = used or {p.name: p.stat().st_blocks * 512 for p in kept.iterdir()}
        size, extra = size + 4096, ["--resume"]
        resize(folder, str(size))
        assert size < 64 * 4096, failed
    assert list(dict.fromkeys(failed)) == ["out.report.json", "out.frames.csv", "out.mp4"]
    assert out.read_bytes() == whole.read_bytes()
    assert json.loads((folder / "out.report.json").read_text())["frames"]
    assert list(kept.iterdir()) == []  # the state removed (the folder is a mount point)

    # the resume folder's side: the first frame's PNG fails; then, the first frame and its
    # state kept (a Ctrl-C), the second frame's PNG, then the state after it
    resize(folder, "1m")
    out = folder / "again.mp4"
    kept = tmpfs(resume_folder(out), "4k")
    assert main(upscale(clip, sr_model, out)) == 2
    assert failed_write(capfd, 0) == "frame_000000.png" and frames_done(out) == 0
    resize(kept, "4m")
    interrupted_run(clip, sr_model, out, 1)
    state = (kept / STATE_FILE).stat().st_blocks * 512
    usage = sum(p.stat().st_blocks * 512 for p in kept.iterdir())
    # a PNG takes 2 pages or more; the state after frame 1 is no smaller than after frame 0
    frame1 = used["frame_000001.png"]
    for room, name in (
        (usage + 4096, "frame_000001.png"),
        (usage + frame1 + state - 4096, STATE_FILE),
    ):
        resize(kept, str(room))
        assert main(upscale(clip, sr_model, out, "--resume")) == 2
        assert failed_write(capfd, 1) == name
        assert frames_done(out) == 1 and not out.exists()
        assert [p.name for p in kept.iterdir() if ".partial-" in p.name] == []
        assert set(no_leftovers(folder)) == {".out.mp4.resume", kept.name}  # mount points
    resize(kept, "4m")
    assert main(upscale(clip, sr_model, out, "--resume")) == 0
    assert out.read_bytes() == whole.read_bytes()
    assert (folder / "again.report.json").is_file() and list(kept.iterdir()) == []


# --- Ctrl-C twice ----------------------------------------------------------------------------


def stopped_mid_run(clip: Path, model: Path, output: Path) -> subprocess.Popen:
    """A ``wdiff upscale`` child, stopped (SIGSTOP) once its first frame is kept."""
    child = start_wdiff(upscale(clip, model, output), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while frames_done(output) < 1 and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGSTOP)
    assert child.poll() is None and frames_done(output) >= 1, "the run ended too soon"
    return child


@pytest.mark.slow  # two children importing torch
def test_ctrl_c_twice_exits_130_with_one_line(tmp_path, clip, sr_model):
    # back to back: the second lands wherever the first's unwinding has got to
    out = tmp_path / "out.mp4"
    child = stopped_mid_run(clip, sr_model, out)
    child.send_signal(signal.SIGINT)
    child.send_signal(signal.SIGCONT)
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=120)[1].strip().splitlines()
    assert child.returncode == 130, (child.returncode, err)
    assert len(err) == 1 and err[0].startswith("wdiff: interrupted"), err
    assert frames_done(out) >= 1 and not out.exists()
    whole = tmp_path / "whole.mp4"
    assert main(upscale(clip, sr_model, whole)) == 0
    assert main(upscale(clip, sr_model, out, "--resume")) == 0  # its lock taken over, if left
    assert out.read_bytes() == whole.read_bytes()
    # after the first one's line, while the interpreter shuts down: nothing more is said
    out = tmp_path / "again.mp4"
    child = stopped_mid_run(clip, sr_model, out)
    child.send_signal(signal.SIGINT)
    child.send_signal(signal.SIGCONT)
    line = child.stderr.readline()
    child.send_signal(signal.SIGINT)
    rest = child.communicate(timeout=120)[1]
    assert child.returncode == 130, (child.returncode, line, rest)
    assert line.startswith("wdiff: interrupted; ") and "--resume" in line and rest == ""
    assert main(upscale(clip, sr_model, out, "--resume")) == 0
    assert out.read_bytes() == whole.read_bytes()
