"""`wdiff inpaint --preview` (issue #21): OUT.preview.mp4, the masked input (the hole tinted)
beside the output, at the output's frame rate and frame count, written atomically (nothing of it
after an interrupted run; a resumed run's preview is the uninterrupted one's), its path on stdout
after the output's."""

from __future__ import annotations

import numpy as np
import pytest
from media import make_clip
from PIL import Image
from stopping import stopped_after

from wdiff.cli import main
from wdiff.errors import Interrupted
from wdiff.restore import plan_restore, run_restore
from wdiff.video import open_video

SIZE = (32, 24)


@pytest.fixture
def hole(tmp_path):
    hole = np.zeros(SIZE[::-1], dtype=bool)
    hole[6:16, 8:20] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    return hole


def frames(path) -> np.ndarray:
    return np.stack(list(open_video(path).frames())).astype(int)


def inpaint(tmp_path, model, clip, *more) -> list[str]:
    args = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png"), "--model", str(model)]
    return [*args, "--steps", "1", "--no-cache", "--crf", "0", *more]


def test_preview_shows_the_masked_input_beside_the_output(tmp_path, inpaint_model, hole, capfd):
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=SIZE, audio=False)
    out = tmp_path / "out.mkv"
    lossless = ["--codec", "ffv1", "--pix-fmt", "yuv444p10le"]  # RGB back exactly (measured)
    args = inpaint(tmp_path, inpaint_model, clip, "-o", str(out), "--preview", *lossless)
    assert main(["--quiet", *args]) == 0
    preview = tmp_path / "out.preview.mp4"
    assert capfd.readouterr() == (f"{out}\n{preview}\n", "")
    info, shown = open_video(preview).info, frames(preview)
    assert (info.width, info.height, info.frame_count, info.fps) == (64, 24, 3, 24)
    assert info.codec == "ffv1"  # encoded as the output is
    assert np.array_equal(shown[:, :, SIZE[0] :], frames(out))  # the output on the right
    source, left = frames(clip), shown[:, :, : SIZE[0]]
    assert np.array_equal(left[:, ~hole], source[:, ~hole])  # the input on the left
    tinted = (source + np.array([255, 0, 255])) // 2  # the hole: half input, half magenta
    assert np.array_equal(left[:, hole], tinted[:, hole])


def test_preview_output_names_the_file_and_bad_ones_are_one_line(
    tmp_path, inpaint_model, hole, capfd
):
    clip = make_clip(tmp_path / "in.mp4", frames=2, size=SIZE, audio=False)
    out, there = tmp_path / "out.mp4", tmp_path / "look.mkv"
    assert (
        main(
            [
                *inpaint(tmp_path, inpaint_model, clip, "-o", str(out)),
                "--preview-output",
                str(there),
            ]
        )
        == 0
    )
    assert capfd.readouterr().out.splitlines() == [str(out), str(there)]
    assert open_video(there).info.width == 2 * SIZE[0]
    assert not (tmp_path / "out.preview.mp4").exists()

    for path, says in (
        (tmp_path / "look.png", "name an .mp4, .mkv or .mov file"),
        (clip, "is the input"),
        (tmp_path / "other.mp4", "is the output"),
        (there, "already exists; pass --overwrite"),
    ):
        more = ["-o", str(tmp_path / "other.mp4"), "--preview-output", str(path)]
        assert main(inpaint(tmp_path, inpaint_model, clip, *more)) == 2
        err = capfd.readouterr().err
        assert err.startswith("wdiff: error: ") and says in err and len(err.splitlines()) == 1
    assert not (tmp_path / "other.mp4").exists()
    upscale = ["upscale", str(clip), "--scale", "2", "--preview"]
    assert main(upscale) == 2 and "No such option: --preview" in capfd.readouterr().err


def test_an_interrupted_run_leaves_no_preview_and_resumes_to_the_same_one(
    tmp_path, inpaint_model, hole
):
    clip = make_clip(tmp_path / "in.mp4", frames=4, size=SIZE, audio=False)
    given = {"steps": 1, "model": str(inpaint_model)}

    def job(name, **options):
        return plan_restore(
            "inpaint",
            clip,
            tmp_path / name,
            mask=tmp_path / "mask.png",
            given=given,
            use_cache=False,
            preview=True,
            **options,
        )

    whole = run_restore(job("whole.mp4"))
    assert whole.preview == tmp_path / "whole.preview.mp4" and whole.preview.is_file()
    with pytest.raises(Interrupted, match="2 finished frames"):
        run_restore(job("out.mp4"), feedback=stopped_after(2))
    assert not (tmp_path / "out.preview.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    resumed = run_restore(job("out.mp4", resume=True))
    assert resumed.preview.read_bytes() == whole.preview.read_bytes()
    assert resumed.output.read_bytes() == whole.output.read_bytes()
