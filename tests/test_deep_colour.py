"""More than 8 bits kept in the pixels, not only in the format (issue #21): a 10-bit input is read
as uint16 frames (``frames(deep=True)``), restored, and written from uint16 frames when the
output has more than 8 bits; inpainting pastes back the decoded 16-bit pixels; ``degrade`` and
a resumed run (16-bit kept frames) keep them too. 8-bit inputs are read and written as before
(tests/test_determinism.py and tests/test_resume.py hold their bytes).

The inputs are written here with PyAV directly, from a pattern at 16-bit precision (values
between 8-bit levels). An 8-bit pipeline leaves a 10-bit 4:4:4 output's decoded green within a
quarter of an 8-bit level of an 8-bit level (BT.709 green takes its error mostly from Y, whose
10-bit step is a quarter of an 8-bit one); a deeper one spreads it evenly.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from stopping import stopped_after

from wdiff.cli import main
from wdiff.errors import Interrupted
from wdiff.resume import resume_folder
from wdiff.video import VideoWriter, frames_to_tensor, open_video, tensor_to_frames
from wdiff.video.info import DEEP_WHITE

SIZE = (32, 24)
CHROMA_MARGIN = 4  # as tests/test_inpaint_known_pixels.py: 4:2:0 shares chroma near the hole


def deep_clip(
    path, frames=4, size=SIZE, pix_fmt="yuv444p10le", codec="ffv1", crf=0, full_range=False
):
    """``frames`` frames of a smooth colour pattern (shifted a pixel a frame) at 16-bit
    precision, converted to ``pix_fmt`` with BT.709 limited (or full) range and tagged so; an
    RGB ``pix_fmt`` (gbrp10le) holds the pattern at full scale (white 1023)."""
    width, height = size
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if codec != "ffv1":
        stream.options = {"crf": str(crf)}
    context = stream.codec_context
    context.colorspace = context.color_primaries = context.color_trc = 1
    context.color_range = 2 if full_range else 1
    rgb = pix_fmt.startswith("gbr")
    convert = {} if rgb else {"dst_colorspace": "itu709"}
    convert["dst_color_range"] = "JPEG" if full_range else "MPEG"
    for index in range(frames):
        pixels = deep_pattern(index, size)
        if rgb:  # swscale's RGB to RGB keeps 65535 as white
            pixels = np.round(pixels * (65535 / DEEP_WHITE)).astype(np.uint16)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb48le")
        frame = frame.reformat(format=pix_fmt, **convert)
        frame.pts = index
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def deep_pattern(index: int, size=SIZE) -> np.ndarray:
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    x = x - index
    rgb = np.stack(
        [
            0.5 + 0.3 * np.sin(x / 9),
            0.5 + 0.3 * np.cos(y / 7 + x / 13),
            0.5 + 0.3 * np.sin((x + y) / 11),
        ],
        axis=-1,
    )
    return np.round(rgb * DEEP_WHITE).astype(np.uint16)


def decoded_444(path, colour_range="MPEG") -> np.ndarray:
    """A BT.709 4:4:4 file's frames as rgb48le, by PyAV alone (not wdiff)."""
    convert = {"src_colorspace": "itu709", "src_color_range": colour_range}
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb48le", **convert) for frame in container.decode(0)]
    return np.stack(frames).astype(int)


def deep_frames(path) -> np.ndarray:
    return np.stack(list(open_video(path).frames(deep=True))).astype(int)


def off_8_bit_levels(frames: np.ndarray) -> float:
    """The share of green samples more than 0.3 of an 8-bit level from one (8-bit ``v`` is
    ``v << 8``): about 0.4 for values spread evenly, 0 for an 8-bit pipeline's."""
    green = frames[..., 1] / 256
    return float((np.abs(green - np.round(green)) > 0.3).mean())


def grown(hole: np.ndarray, pixels: int) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(hole.astype(np.uint8), disc).astype(bool)


@pytest.fixture
def hole(tmp_path):
    hole = np.zeros(SIZE[::-1], dtype=bool)
    hole[6:16, 8:20] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    return hole


def test_swscale_has_8_bit_v_as_16_bit_v_shifted_by_8():
    """``DEEP_WHITE``: rgb24 ``v`` and rgb48le ``v << 8`` give the same 10-bit YUV but for
    rounding (``v * 257`` puts Y 1.7 steps higher, measured), and 10-bit white decodes to
    about 65280. A converter that scales by 257 instead fails here: then
    ``video.info.DEEP_WHITE`` is to be 65535."""
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    convert = {"dst_colorspace": "itu709", "dst_color_range": "MPEG", "threads": 1}

    def planes(frame) -> np.ndarray:
        frame = frame.reformat(format="yuv444p10le", **convert)
        return np.stack(
            [np.frombuffer(p, np.uint16).reshape(64, -1)[:, :64] for p in frame.planes]
        ).astype(int)

    narrow = planes(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    deep = planes(av.VideoFrame.from_ndarray(rgb.astype(np.uint16) << 8, format="rgb48le"))
    assert np.abs(deep - narrow).max() <= 1
    assert np.abs((deep - narrow).mean(axis=(1, 2))).max() < 0.1  # measured 0.03
    white = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 255, np.uint8), format="rgb24")
    white = white.reformat(format="yuv444p10le", **convert)
    back = white.to_ndarray(format="rgb48le", src_colorspace="itu709", src_color_range="MPEG")
    assert np.abs(back.astype(int) - DEEP_WHITE).max() <= 8


def test_uint16_frames_come_back_exactly_through_tensors():
    every = np.arange(65536, dtype=np.uint16).reshape(1, 256, 256, 1).repeat(3, axis=-1)
    assert np.array_equal(tensor_to_frames(frames_to_tensor(every), deep=True), every)
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    shifted = levels.astype(np.uint16) << 8
    assert torch.equal(frames_to_tensor(levels), frames_to_tensor(shifted))
    assert np.array_equal(tensor_to_frames(frames_to_tensor(shifted)), levels)
    assert tensor_to_frames(frames_to_tensor(levels)).dtype == np.uint8  # 8-bit as before


@pytest.mark.parametrize("pix_fmt", ["yuv444p10le", "yuv420p10le", "yuv422p12le"])
def test_deep_sources_read_as_uint16_and_8_bit_ones_as_before(tmp_path, pix_fmt):
    clip = deep_clip(tmp_path / "in.mkv", frames=2, pix_fmt=pix_fmt)
    reader = open_video(clip)
    assert reader.info.bit_depth == int(pix_fmt[-4:-2])
    deep = np.stack(list(reader.frames(deep=True)))
    narrow = np.stack(list(reader.frames()))
    assert deep.dtype == np.uint16 and narrow.dtype == np.uint8
    truth = np.stack([deep_pattern(i) for i in range(2)]).astype(int)
    # as close to the pattern as the 8-bit frames, or closer (4:4:4: measured 31 against 70):
    # subsampled chroma interpolated, not scrambled (swscale's rgb48le output with
    # FULL_CHR_H_INT was off by up to 58752)
    error = np.abs(deep - truth).mean()
    assert error <= np.abs(narrow.astype(int) * 256 - truth).mean()
    assert np.abs(deep - narrow.astype(int) * 256).mean() < 100  # the same picture, finer
    assert off_8_bit_levels(deep) > 0.2

    eight = tmp_path / "eight.mp4"
    with VideoWriter(eight, 24) as writer:
        writer.write(narrow)
    reader = open_video(eight)
    assert reader.info.bit_depth == 8
    assert all(
        a.dtype == np.uint8 and np.array_equal(a, b)
        for a, b in zip(reader.frames(deep=True), reader.frames(), strict=True)
    )


@pytest.mark.parametrize("pix_fmt", ["yuv444p10le", "yuv420p10le", "gbrp10le"])
def test_deep_frames_have_white_at_deep_white(tmp_path, pix_fmt):
    """RGB sources decode with white at 65535 (swscale's RGB to RGB): rescaled to
    ``DEEP_WHITE``, so the picture is not 0.4% brighter than a YUV one's."""
    clip = deep_clip(tmp_path / "in.mkv", frames=1, pix_fmt=pix_fmt)
    deep = next(open_video(clip).frames(deep=True)).astype(int)
    truth = deep_pattern(0).astype(int)
    assert abs((deep - truth).mean()) < 20  # RGB unscaled: 144
    assert np.abs(deep - truth).mean() < 300  # 4:2:0's chroma: 254 (4:4:4: 31)


def inpaint(tmp_path, model, clip, out, *more) -> None:
    args = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png"), "--model", str(model)]
    assert main(["--quiet", *args, "--steps", "1", "--no-cache", "-o", str(out), *more]) == 0


def test_ten_bit_inpainting_keeps_the_decoded_16_bit_pixels(tmp_path, inpaint_model, hole):
    """FFV1 4:4:4: outside the hole the output is the input's decoded pixels, exactly (an
    8-bit pipeline is off by up to half an 8-bit level, 128); 4:2:0: the plain re-encode's, as
    exactly as tests/test_inpaint_known_pixels.py holds 8-bit ones."""
    clip = deep_clip(tmp_path / "in.mkv")
    out = tmp_path / "out.mkv"
    inpaint(tmp_path, inpaint_model, clip, out)
    assert open_video(out).info.pix_fmt == "yuv444p10le"
    source, ours = decoded_444(clip), decoded_444(out)
    assert np.array_equal(ours[:, ~hole], source[:, ~hole])
    assert np.abs(ours - source)[:, hole].mean() > 1000  # the hole was filled, not kept

    # full range: swscale's full-range 10-bit conversions are not exact inverses (a plain
    # round trip moves Y by up to 3 levels), so near, not exact (measured 170; 8-bit: 310)
    clip = deep_clip(tmp_path / "full.mkv", full_range=True)
    out = tmp_path / "out-full.mkv"
    inpaint(tmp_path, inpaint_model, clip, out)
    source, ours = decoded_444(clip, "JPEG"), decoded_444(out, "JPEG")
    assert np.abs(ours - source)[:, ~hole].max() < 200

    clip = deep_clip(tmp_path / "in420.mkv", pix_fmt="yuv420p10le")
    out = tmp_path / "out420.mkv"
    inpaint(tmp_path, inpaint_model, clip, out)
    plain = tmp_path / "plain420.mkv"
    with VideoWriter(plain, 24, source=open_video(clip).info) as writer:
        writer.write(np.stack(list(open_video(clip).frames(deep=True))))
    outside = ~grown(hole, CHROMA_MARGIN)
    assert np.array_equal(deep_frames(out)[:, outside], deep_frames(plain)[:, outside])


def test_ten_bit_upscale_writes_more_than_8_bits(tmp_path, sr_model):
    clip = deep_clip(tmp_path / "low.mkv", frames=2)
    out = tmp_path / "up.mkv"
    args = ["upscale", str(clip), "--scale", "2", "--steps", "1", "--model", str(sr_model)]
    assert main(["--quiet", *args, "--no-cache", "-o", str(out)]) == 0
    assert open_video(out).info.pix_fmt == "yuv444p10le"
    assert off_8_bit_levels(decoded_444(out)) > 0.2  # measured 0.40; 8-bit: 0


def test_degrade_keeps_ten_bits(tmp_path):
    clip = deep_clip(tmp_path / "in.mkv", frames=2)
    out = tmp_path / "low.mkv"
    assert main(["--quiet", "degrade", str(clip), "--scale", "2", "-o", str(out)]) == 0
    assert open_video(out).info.pix_fmt == "yuv444p10le"
    low = decoded_444(out)
    assert off_8_bit_levels(low) > 0.2
    # the area average of the 16-bit input, to 10-bit precision
    source = torch.from_numpy(decoded_444(clip)).permute(0, 3, 1, 2).double()
    average = torch.nn.functional.avg_pool2d(source, 2).permute(0, 2, 3, 1).numpy()
    assert np.abs(low - average).max() < 200


def test_a_resumed_ten_bit_run_gives_the_uninterrupted_bytes(tmp_path, inpaint_model, hole):
    from wdiff.restore import plan_restore, run_restore

    clip = deep_clip(tmp_path / "in.mkv")
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

    whole = run_restore(job("whole.mkv"))
    with pytest.raises(Interrupted, match="2 finished frames"):
        run_restore(job("out.mkv"), feedback=stopped_after(2))
    kept = sorted(resume_folder(tmp_path / "out.mkv").glob("frame_*.png"))
    assert len(kept) == 2
    assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16 for p in kept)
    resumed = run_restore(job("out.mkv", resume=True))
    assert resumed.output.read_bytes() == whole.output.read_bytes()
    assert resumed.preview.read_bytes() == whole.preview.read_bytes()


def test_sixteen_bit_png_folders_are_read_and_written_deep(tmp_path, sr_model):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(2):  # PNG white is 65535
        png = np.round(deep_pattern(index) * (65535 / DEEP_WHITE)).astype(np.uint16)
        cv2.imwrite(str(folder / f"frame_{index}.png"), cv2.cvtColor(png, cv2.COLOR_RGB2BGR))
    reader = open_video(folder)
    assert (reader.info.pix_fmt, reader.info.bit_depth) == ("rgb48le", 16)
    truth = np.stack([deep_pattern(i) for i in range(2)]).astype(int)
    deep = np.stack(list(reader.frames(deep=True)))
    assert deep.dtype == np.uint16 and np.abs(deep - truth).max() <= 1
    narrow = np.stack(list(reader.frames()))  # rounded to 8 bits for flow and metrics
    assert narrow.dtype == np.uint8 and np.abs(narrow.astype(int) * 256 - truth).max() <= 130

    out = tmp_path / "up.mp4"
    args = ["upscale", str(folder), "--scale", "2", "--steps", "1", "--model", str(sr_model)]
    assert main(["--quiet", *args, "--no-cache", "-o", str(out)]) == 0
    assert open_video(out).info.pix_fmt == "yuv444p10le"
    assert off_8_bit_levels(deep_frames(out)) > 0.2
