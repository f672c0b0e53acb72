"""Progress in logs (stderr not a terminal): plain lines, throttled, silent for short work."""

import io
import json

from media import make_clip

from wdiff.cli import main
from wdiff.progress import LineProgress


def test_lines_say_count_share_and_time_left():
    log = io.StringIO()
    progress = LineProgress("upscale x8 (frames)", 4, interval=0, stream=log)
    for _ in range(4):
        progress.advance()
    lines = log.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("upscale x8 (frames): 2/4 (50%), 0:00:00 elapsed, ")
    assert lines[-1].endswith("0:00:00 left")


def test_short_work_stays_silent():
    log = io.StringIO()
    progress = LineProgress("flow (dis)", 100, interval=60, stream=log)
    for _ in range(100):
        progress.advance()
    assert log.getvalue() == ""


def test_a_logged_run_reports_each_frame(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("WDIFF_PROGRESS_SECONDS", "0")
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12), audio=False)
    out = tmp_path / "up.mp4"
    assert main(["upscale", str(clip), "--scale", "2", "--steps", "2", "-o", str(out)]) == 0
    err = capfd.readouterr().err
    frames = [
        line for line in err.splitlines() if line.startswith("low.mp4: upscale x2 (frames): ")
    ]
    assert [line.split("(frames): ")[1].split(" ")[0] for line in frames] == ["1/3", "2/3", "3/3"]
    flows = [line for line in err.splitlines() if line.startswith("low.mp4: flow (dis): ")]
    assert flows and flows[-1].split(": ")[2].startswith("2/2")  # the input named, here too
    assert json.loads((tmp_path / "up.report.json").read_text())["frames"]
