"""Reader/writer round trips, audio, rotation, frame folders, masks, atomic writes."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import audio_seconds, make_clip, make_frame_folder, pattern, psnr
from PIL import Image

from wdiff.errors import WdiffError
from wdiff.video import (
    MaskReader,
    VideoWriter,
    frames_to_tensor,
    open_video,
    tensor_to_frames,
)


def copy_video(source, target, **writer_options):
    reader = open_video(source)
    with VideoWriter(target, reader.info.fps, source=reader.info, **writer_options) as out:
        for chunk in reader.chunks(5):
            out.write(chunk)
    return reader


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), Fraction(24), Fraction(25)])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_round_trip_keeps_count_size_fps_and_audio(tmp_path, fps, suffix):
    source = make_clip(tmp_path / f"in{suffix}", frames=15, size=(64, 48), fps=fps)
    target = tmp_path / f"out{suffix}"
    reader = copy_video(source, target)
    back = open_video(target)
    assert back.info.frame_count == reader.info.frame_count == 15
    assert back.info.size == (64, 48)
    assert back.info.fps == fps
    assert back.info.has_audio
    frames = list(back.frames())
    assert len(frames) == 15
    assert abs(audio_seconds(target) - back.info.duration) <= float(1 / fps)
    # a second 4:2:0 generation (the reader upsamples chroma fully, closer to the source)
    assert min(psnr(a, b) for a, b in zip(frames, reader.frames(), strict=True)) > 33


def test_names_with_a_colon_are_files_not_urls(tmp_path, monkeypatch):
    """``take-2:a.mp4`` (relative, as a user types it) is read and written as a file; FFmpeg
    would take ``take-2`` for a protocol and fail."""
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "in-1:b.mp4", frames=6, size=(64, 48))
    reader = copy_video(Path("in-1:b.mp4"), Path("take-2:a.mp4"))
    back = open_video(Path("take-2:a.mp4"))
    assert back.info.frame_count == reader.info.frame_count == 6 and back.info.has_audio
    assert len(list(back.frames())) == 6


def test_audio_is_reencoded_when_the_container_cannot_carry_it(tmp_path):
    source = make_clip(tmp_path / "in.mov", frames=12, audio_codec="pcm_s16le")
    target = tmp_path / "out.mp4"
    copy_video(source, target)
    with av.open(str(target)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert abs(audio_seconds(target) - 0.5) <= 1 / 24


def test_audio_is_copied_as_is_when_it_fits(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=12)
    target = tmp_path / "out.mkv"
    copy_video(source, target)
    with av.open(str(source)) as a, av.open(str(target)) as b:
        original = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        copied = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert copied == original


def test_audio_window_follows_the_start_frame(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=48, fps=Fraction(24))
    reader = open_video(source)
    target = tmp_path / "cut.mp4"
    with VideoWriter(target, reader.info.fps, source=reader.info, start_frame=24) as out:
        for frame in reader.frames(start=24, count=12):
            out.write(frame)
    assert open_video(target).info.frame_count == 12
    assert abs(audio_seconds(target) - 0.5) <= 1 / 24


@pytest.mark.parametrize("size", [(65, 49), (33, 48), (64, 17)])
def test_odd_sizes_round_trip_at_their_true_size(tmp_path, size):
    frames = [pattern(i, *size) for i in range(5)]
    target = tmp_path / "odd.mp4"
    with VideoWriter(target, Fraction(24)) as out:
        out.write(np.stack(frames))
    back = open_video(target)
    assert back.info.size == size
    decoded = list(back.frames())
    assert decoded[0].shape == (size[1], size[0], 3)
    assert min(psnr(a, b) for a, b in zip(decoded, frames, strict=True)) > 30  # 4:2:0 chroma


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_honoured(tmp_path, rotation):
    path = tmp_path / "rotated.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.set_display_rotation(rotation)
    source = [pattern(i, 64, 48) for i in range(3)]
    for index, image in enumerate(source):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    reader = open_video(path)
    expected_size = (48, 64) if rotation in (90, 270) else (64, 48)
    assert reader.info.size == expected_size
    first = next(reader.frames())
    # the displayed frame is the coded one turned counter-clockwise by the metadata's angle
    right = psnr(first, np.rot90(source[0], k=rotation // 90))
    wrong = psnr(first, np.rot90(source[0], k=0 if rotation == 180 else -rotation // 90))
    assert right > 28 and right > wrong + 15


def test_frame_folder_reads_in_natural_order_with_fps(tmp_path):
    folder = make_frame_folder(tmp_path / "frames", frames=12)
    reader = open_video(folder)
    assert reader.info.fps == 24 and reader.info.frame_count == 12 and reader.info.is_folder
    frames = list(reader.frames())
    for index, frame in enumerate(frames):  # frame_10.png comes after frame_9.png
        np.testing.assert_array_equal(frame, pattern(index, 64, 48))
    assert open_video(folder, fps=Fraction(30000, 1001)).info.fps == Fraction(30000, 1001)


def test_png_folder_output_is_lossless(tmp_path):
    frames = np.stack([pattern(i, 40, 30) for i in range(4)])
    with VideoWriter(tmp_path / "out", Fraction(24)) as out:
        out.write(frames)
    back = np.stack(list(open_video(tmp_path / "out").frames()))
    np.testing.assert_array_equal(back, frames)


def test_chunks_cover_the_video_once(tmp_path):
    reader = open_video(make_clip(tmp_path / "in.mp4", frames=11, audio=False))
    sizes = [len(chunk) for chunk in reader.chunks(4)]
    assert sizes == [4, 4, 3]
    assert [len(c) for c in reader.chunks(4, start=6, count=3)] == [3]


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), VideoWriter(target, Fraction(24)) as out:
        out.write(pattern(0, 64, 48))
        raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []


def test_truncated_video_is_reported(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=30, audio=False)
    data = source.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(WdiffError, match="broken.mp4"):
        list(open_video(broken).frames())


def test_tensor_conversion_round_trips():
    frames = np.stack([pattern(i, 16, 12) for i in range(3)])
    tensor = frames_to_tensor(frames)
    assert tensor.shape == (3, 3, 12, 16)
    assert tensor.min() >= -1 and tensor.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(tensor), frames)


class TestMasks:
    def test_single_image_serves_every_frame(self, tmp_path):
        video = open_video(make_clip(tmp_path / "in.mp4", frames=5, audio=False)).info
        image = np.zeros((48, 64), np.uint8)
        image[10:20, 30:40] = 255
        Image.fromarray(image).save(tmp_path / "mask.png")
        masks = list(MaskReader(tmp_path / "mask.png", video).frames())
        assert len(masks) == 5 and masks[0].dtype == bool
        assert masks[0].sum() == 100 and masks[4][15, 35] and not masks[4][0, 0]

    def test_folder_and_video_masks(self, tmp_path):
        video = open_video(make_clip(tmp_path / "in.mp4", frames=4, audio=False)).info
        folder = tmp_path / "masks"
        folder.mkdir()
        for index in range(4):
            image = np.zeros((48, 64), np.uint8)
            image[:, : 10 * (index + 1)] = 255
            Image.fromarray(image).save(folder / f"m{index}.png")
        masks = list(MaskReader(folder, video).frames())
        assert [int(m.sum()) for m in masks] == [480 * (i + 1) for i in range(4)]
        with VideoWriter(tmp_path / "mask.mp4", Fraction(24)) as out:
            for index in range(4):
                out.write(np.repeat((masks[index] * 255).astype(np.uint8)[..., None], 3, axis=2))
        from_video = list(MaskReader(tmp_path / "mask.mp4", video).frames())
        for a, b in zip(from_video, masks, strict=True):
            assert (a != b).mean() < 0.01

    def test_wrong_size_names_both_sizes(self, tmp_path):
        video = open_video(make_clip(tmp_path / "in.mp4", frames=3, audio=False)).info
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "mask.png")
        with pytest.raises(WdiffError, match=r"mask\.png.*30x20.*64x48"):
            MaskReader(tmp_path / "mask.png", video)

    def test_wrong_count_names_both_counts(self, tmp_path):
        video = open_video(make_clip(tmp_path / "in.mp4", frames=3, audio=False)).info
        mask = make_clip(tmp_path / "mask.mp4", frames=5, audio=False)
        with pytest.raises(WdiffError, match=r"mask\.mp4.*5 frames.*3"):
            MaskReader(mask, video)

    def test_sixteen_bit_masks_threshold_at_half_range(self, tmp_path):
        video = open_video(make_clip(tmp_path / "in.mp4", frames=2, audio=False)).info
        image = np.zeros((48, 64), np.uint16)
        image[:, :32] = 40000
        image[:, 32:] = 20000
        Image.fromarray(image).save(tmp_path / "mask16.png")
        mask = next(MaskReader(tmp_path / "mask16.png", video).frames())
        assert mask[:, :32].all() and not mask[:, 32:].any()
