"""What a video output keeps of its input: colour tags and matrix, bit depth and chroma,
frame times, every audio and subtitle stream with its tags, odd sizes as they are.

The inputs are written here with PyAV directly (not with wdiff's writer), and the outputs
read back with PyAV's own view of the stream (what ffprobe reports: there is no ffprobe
binary on this machine) as well as with wdiff's reader.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import pattern, psnr

from wdiff.errors import WdiffError
from wdiff.video import VideoWriter, open_video

ASS = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, "
    b"PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, "
    b"StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    b"MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,"
    b"0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, "
    b"Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
AUDIO_TRACKS = (("eng", "English"), ("fra", "Commentaire"))
SUBTITLES = ((0, 100, b"Hallo"), (120, 110, b"Welt"))  # (start ms, duration ms, text)
MATRICES = {1: "itu709", 6: "itu601", 5: "itu601"}


def write_clip(
    path: Path,
    frames: int = 6,
    size: tuple[int, int] = (32, 24),
    *,
    pix_fmt: str = "yuv420p",
    matrix: int | None = None,
    full_range: bool = False,
    codec: str = "libx264",
    times_ms: list[int] | None = None,
    audio: tuple[tuple[str, str], ...] = (),
    subtitles: str | None = None,
    crf: int = 0,
) -> Path:
    """A clip of ``pattern`` frames converted with ``matrix`` (FFmpeg's code; None: untagged,
    BT.601) and range and tagged so; ``times_ms``: each frame's time (1/1000 time base); one
    AAC track per (language, title) of ``audio``; ``subtitles``: the codec of a subtitle
    stream (language deu, title Untertitel) holding ``SUBTITLES``."""
    width, height = size
    options = {"movflags": "use_metadata_tags"} if path.suffix != ".mkv" else {}
    container = av.open(str(path), "w", options=options)
    video = container.add_stream(codec, rate=24)
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    video.options = {"crf": str(crf)} if codec != "ffv1" else {}
    time_base = Fraction(1, 1000) if times_ms else Fraction(1, 24)
    video.time_base = video.codec_context.time_base = time_base
    context = video.codec_context
    if matrix is not None:
        context.colorspace, context.color_primaries, context.color_trc = matrix, matrix, matrix
    context.color_range = 2 if full_range else 1
    tracks = []
    for language, title in audio:
        track = container.add_stream("aac", rate=48000)
        track.layout = "stereo"
        track.metadata["language"], track.metadata["title"] = language, title
        tracks.append(track)
    subtitle = None
    if subtitles:
        subtitle = container.add_stream(subtitles)
        subtitle.metadata["language"], subtitle.metadata["title"] = "deu", "Untertitel"
        subtitle.codec_context.subtitle_header = ASS
        subtitle.codec_context.time_base = Fraction(1, 1000)
    seconds = (times_ms[-1] + 40) / 1000 if times_ms else frames / 24
    for track in tracks:
        tone = np.sin(np.arange(int(seconds * 48000)) / 10).astype(np.float32) * 0.1
        for start in range(0, len(tone), 1024):
            chunk = tone[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(
                np.stack([chunk, chunk]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = 48000, start
            container.mux(track.encode(frame))
        container.mux(track.encode(None))
    for start, duration, text in SUBTITLES if subtitle else ():
        events = av.subtitles.subtitle.SubtitleSet.create(
            b"0,0,Default,,0,0,0,," + text, 0, duration, start
        )
        packet = subtitle.codec_context.encode_subtitle(events)
        packet.pts = packet.dts = start
        packet.duration, packet.time_base, packet.stream = duration, Fraction(1, 1000), subtitle
        container.mux(packet)
    colourspace = MATRICES.get(matrix, "itu601")
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern(index, width, height), format="rgb24")
        frame = frame.reformat(
            format=pix_fmt,
            dst_colorspace=colourspace,
            dst_color_range="JPEG" if full_range else "MPEG",
            threads=1,
        )
        frame.pts = times_ms[index] if times_ms else index
        frame.time_base = time_base
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    container.close()
    return path


def copy(source: Path, target: Path, warnings: list[str] | None = None, **options) -> Path:
    """``source`` through wdiff's reader and writer, the writer told what the source is."""
    reader = open_video(source)
    warn = warnings.append if warnings is not None else None
    with VideoWriter(target, reader.info.fps, source=reader.info, warn=warn, **options) as out:
        for chunk in reader.chunks(4):
            out.write(chunk)
    return target


def probe(path: Path) -> dict:
    """The first video stream as other tools see it (PyAV's codec parameters; no wdiff)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        first = next(container.decode(stream))
        return {
            "size": (context.width, context.height),
            "pix_fmt": first.format.name,
            "tags": (context.colorspace, context.color_primaries, context.color_trc),
            "full_range": context.color_range == 2,
            "codec": context.name,
            "metadata": dict(container.metadata),
        }


def decode_as_tagged(path: Path) -> list[np.ndarray]:
    """RGB frames decoded by PyAV with the matrix and range the stream is tagged with."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(
                frame.to_ndarray(
                    format="rgb24",
                    src_colorspace=MATRICES[frame.colorspace],
                    src_color_range="JPEG" if frame.color_range == 2 else "MPEG",
                    threads=1,
                )
            )
    return frames


def max_error(frames: list[np.ndarray], size: tuple[int, int]) -> int:
    """The largest difference from the ``pattern`` frames drawn, in levels."""
    return max(
        int(np.abs(frame.astype(int) - pattern(index, *size)).max())
        for index, frame in enumerate(frames)
    )


@pytest.mark.parametrize(
    "matrix, full_range",
    [(1, False), (6, False), (1, True), (6, True)],
    ids=["bt709", "bt601", "bt709-full", "bt601-full"],
)
def test_colour_tags_and_pixels_round_trip(tmp_path, matrix, full_range):
    # 4:4:4 at crf 0: what remains is conversion rounding; a wrong matrix costs 16-33 levels
    source = write_clip(
        tmp_path / "in.mp4", pix_fmt="yuv444p", matrix=matrix, full_range=full_range
    )
    reader = open_video(source)
    assert max_error(list(reader.frames()), (32, 24)) <= 3  # read with its own matrix, range
    out = copy(source, tmp_path / "out.mp4", crf=0)
    seen = probe(out)
    assert seen["tags"] == (matrix, matrix, matrix)
    assert seen["full_range"] == full_range
    assert seen["pix_fmt"].replace("yuvj", "yuv") == "yuv444p"  # chroma kept
    assert max_error(decode_as_tagged(out), (32, 24)) <= 4
    assert max_error(list(open_video(out).frames()), (32, 24)) <= 4


def test_untagged_input_is_read_and_tagged_as_players_guess(tmp_path):
    source = write_clip(tmp_path / "in.mp4", pix_fmt="yuv444p", matrix=None)
    out = copy(source, tmp_path / "out.mp4", crf=0)
    assert probe(out)["tags"] == (6, 6, 6)  # small: BT.601 (SMPTE 170M), now said
    assert max_error(decode_as_tagged(out), (32, 24)) <= 4


def test_reading_4_2_0_is_not_darkened(tmp_path):
    """swscale's default chroma upsampling darkened 4:2:0 frames by 1-2 levels on average."""
    source = write_clip(tmp_path / "in.mp4", size=(64, 48), matrix=1)
    frames = list(open_video(source).frames())
    bias = np.mean([(f.astype(float) - pattern(i, 64, 48)).mean() for i, f in enumerate(frames)])
    assert abs(bias) < 0.3


def test_ten_bit_in_ten_bit_out(tmp_path):
    source = write_clip(tmp_path / "in.mkv", pix_fmt="yuv420p10le", matrix=1)
    assert open_video(source).info.pix_fmt == "yuv420p10le"
    out = copy(source, tmp_path / "out.mp4")
    seen = probe(out)
    assert seen["pix_fmt"] == "yuv420p10le" and seen["codec"] == "h264"
    assert seen["tags"] == (1, 1, 1)


def test_sixteen_bit_frames_keep_more_than_eight_bits(tmp_path):
    # a ramp of 1/4 levels: uint8 frames would round it to 8-bit steps
    ramp = np.linspace(100, 110, 64)[None, :, None] * np.ones((48, 1, 3))
    frames = np.stack([np.round(ramp * 257).astype(np.uint16)] * 3)
    out = tmp_path / "deep.mkv"
    with VideoWriter(out, Fraction(24), codec="ffv1", pix_fmt="yuv444p10le") as writer:
        writer.write(frames)
    with av.open(str(out)) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb48le")
    levels = np.unique(decoded[0, :, 1] >> 6)  # the 10-bit levels the green ramp got
    assert len(levels) > 25  # 8 bits would give 11


def test_codec_and_pixel_format_choices(tmp_path):
    source = write_clip(tmp_path / "in.mp4")
    assert probe(copy(source, tmp_path / "x265.mp4", codec="libx265"))["codec"] == "hevc"
    lossless = copy(source, tmp_path / "lossless.mkv", codec="ffv1")
    assert probe(lossless)["codec"] == "ffv1"
    # an FFV1 input stays FFV1 (lossless) unless told otherwise
    assert probe(copy(lossless, tmp_path / "again.mkv"))["codec"] == "ffv1"
    assert probe(copy(source, tmp_path / "444.mp4", pix_fmt="yuv444p"))["pix_fmt"] == "yuv444p"
    with pytest.raises(WdiffError, match="--codec ffv1 cannot be written to .mov"):
        VideoWriter(tmp_path / "x.mov", Fraction(24), codec="ffv1")
    with pytest.raises(WdiffError, match="--pix-fmt rgb24"):
        VideoWriter(tmp_path / "x.mp4", Fraction(24), pix_fmt="rgb24")
    frames = np.stack([pattern(i, 45, 31) for i in range(2)])
    with (
        pytest.raises(WdiffError, match="cannot store a 45x31 frame"),
        VideoWriter(tmp_path / "odd.mp4", Fraction(24), pix_fmt="yuv420p") as writer,
    ):
        writer.write(frames)
    assert not (tmp_path / "odd.mp4").exists()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_is_kept_to_the_millisecond(tmp_path, suffix):
    times = [0, 40, 90, 100, 180, 250, 260, 400]
    source = write_clip(
        tmp_path / f"in{suffix}", frames=len(times), times_ms=times, audio=AUDIO_TRACKS[:1]
    )
    out = copy(source, tmp_path / f"out{suffix}")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        shown = sorted(
            float(packet.pts * packet.time_base) * 1000
            for packet in container.demux(stream)
            if packet.size
        )
    with av.open(str(out)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert np.abs(np.array(shown) - times).max() < 1
    # the audio runs to the end of the last frame (400 + 40 ms), in 1024-sample packets
    assert abs(samples / 48000 - 0.44) <= 1024 / 48000


def test_constant_rate_keeps_its_time_base(tmp_path):
    source = write_clip(tmp_path / "in.mp4")
    out = copy(source, tmp_path / "out.mp4")
    info = open_video(out).info
    assert info.fps == 24 and info.frame_count == 6


def stream_tags(path: Path) -> list[tuple]:
    """(type, codec, language, title) of every audio and subtitle stream."""
    with av.open(str(path)) as container:
        return [
            (
                stream.type,
                stream.codec_context.name,
                stream.metadata.get("language"),
                stream.metadata.get("title") or stream.metadata.get("name"),
            )
            for stream in container.streams
            if stream.type in ("audio", "subtitle")
        ]


def subtitle_cues(path: Path) -> list[tuple[int, int, str]]:
    """(start ms from the video's start, duration ms, text) of the first subtitle stream's
    cues (Matroska starts every stream later by the AAC priming an mp4 stores before 0)."""
    cues = []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video_start = round(float(video.start_time * video.time_base) * 1000)
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            if not packet.size:
                continue
            events = stream.codec_context.decode2(packet)
            if events is None:
                continue
            text = b"".join(rect.ass for rect in events).decode().rsplit(",", 1)[-1]
            ms = float(packet.time_base) * 1000
            start = round(packet.pts * ms) - video_start
            cues.append((start, round(packet.duration * ms), text))
    return cues


@pytest.mark.parametrize(
    "source_suffix, subtitles, target_suffix, converted",
    [
        (".mp4", "mov_text", ".mp4", None),
        (".mkv", "srt", ".mkv", None),
        (".mp4", "mov_text", ".mkv", "srt"),
        (".mkv", "srt", ".mp4", "mov_text"),
    ],
)
def test_every_audio_and_subtitle_stream_is_kept_with_its_tags(
    tmp_path, source_suffix, subtitles, target_suffix, converted
):
    source = write_clip(
        tmp_path / f"in{source_suffix}", audio=AUDIO_TRACKS, subtitles=subtitles, frames=8
    )
    warnings: list[str] = []
    out = copy(source, tmp_path / f"out{target_suffix}", warnings)
    kept = stream_tags(out)
    expected = [("audio", "aac", lang, title) for lang, title in AUDIO_TRACKS]
    subtitle_codec = converted or subtitles
    expected.append(("subtitle", subtitle_codec, "deu", "Untertitel"))
    assert kept == expected
    assert subtitle_cues(out) == [(s, d, t.decode()) for s, d, t in SUBTITLES]
    if converted:
        assert len(warnings) == 1 and f"converted to {converted}" in warnings[0]
    else:
        assert warnings == []
    with av.open(str(source)) as a, av.open(str(out)) as b:  # audio copied packet for packet
        for index in range(2):
            original = [bytes(p) for p in a.demux(a.streams.audio[index]) if p.size]
            copied = [bytes(p) for p in b.demux(b.streams.audio[index]) if p.size]
            assert copied == original


def test_odd_sizes_are_seen_as_they_are(tmp_path):
    frames = np.stack([pattern(i, 45, 31) for i in range(4)])
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, Fraction(24)) as writer:
        writer.write(frames)
    seen = probe(out)
    assert seen["size"] == (45, 31)
    assert not any("wdiff" in key for key in seen["metadata"])  # no private size tag
    back = open_video(out)
    assert back.info.size == (45, 31)
    assert min(psnr(a, b) for a, b in zip(back.frames(), frames, strict=True)) > 30


ENCODE_IN_CHILD = """
import sys
from fractions import Fraction
from pathlib import Path
import numpy as np
from wdiff.video import VideoWriter
frames = np.load(sys.argv[1])
with VideoWriter(Path(sys.argv[2]), Fraction(24), codec=sys.argv[3]) as writer:
    writer.write(frames)
"""


@pytest.mark.parametrize("codec", ["libx265", "ffv1"])
def test_other_encoders_do_not_depend_on_what_the_heap_held(tmp_path, codec):
    """As x264's AVX-512 code did (tests/test_determinism.py): children whose heaps are
    filled with different bytes must write the same file."""
    frames = tmp_path / "frames.npy"
    np.save(frames, np.stack([pattern(i, 96, 64) for i in range(8)]))
    outputs = []
    for fill in (0, 85, 255):
        path = tmp_path / f"heap{fill}.mkv"
        env = os.environ | {"MALLOC_PERTURB_": str(fill)}
        command = [sys.executable, "-c", ENCODE_IN_CHILD, str(frames), str(path), codec]
        subprocess.run(command, env=env, check=True)
        outputs.append(path.read_bytes())
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]


@pytest.mark.parametrize(
    "scale, size, crop",
    [(4, (80, 45), ""), (8, (40, 22), "; the input cropped from 320x180 to 320x176 first")],
)
def test_degrade_says_the_size_every_tool_reads(tmp_path, capfd, scale, size, crop):
    from wdiff.cli import main

    low = tmp_path / "low.mp4"
    assert main(["degrade", "builtin:bunny", "--scale", str(scale), "-o", str(low)]) == 0
    captured = capfd.readouterr()
    assert captured.out == f"{low}\n"
    assert f"wrote {low} ({size[0]}x{size[1]}{crop})" in captured.err
    assert probe(low)["size"] == size
    assert open_video(low).info.size == size


def test_eval_crops_the_original_of_a_degraded_clip_as_degrade_did(tmp_path, capfd):
    import json

    from wdiff.cli import main

    source = write_clip(tmp_path / "in.mp4", frames=5, size=(64, 45), pix_fmt="yuv444p")
    low = tmp_path / "low.mp4"
    assert main(["degrade", str(source), "--scale", "4", "-o", str(low), "-q"]) == 0
    assert open_video(low).info.size == (16, 11)
    # a perfect restoration of the low clip: the original's frames, cropped as degrade did
    restored = tmp_path / "restored"
    with VideoWriter(restored, Fraction(24)) as writer:
        for frame in open_video(source).frames():
            writer.write(frame[:44])
    out = tmp_path / "eval.json"
    args = ["eval", str(restored), "--reference", str(source), "--no-cache", "-o", str(out)]
    assert main(args) == 0
    notes = [line for line in capfd.readouterr().err.splitlines() if "cropped" in line]
    assert notes == [
        f"{source}: reference cropped from 64x45 to 64x44 at the top left, as wdiff degrade "
        "crops its input to multiples of --scale"
    ]
    summary = json.loads(out.read_text())["videos"][0]["summary"]
    assert summary["psnr"]["mean"] == 100.0  # the same pixels: cropped at the top left
    # a size no degrade crop gives is still refused
    assert main(["eval", str(low), "--reference", str(source), "-o", str(out), "-q"]) == 2


@pytest.mark.slow  # about 6 s on 2 idle cores
def test_upscale_keeps_colour_depth_times_and_streams(tmp_path, sr_model):
    from wdiff.cli import main

    times = [0, 40, 90, 100, 180, 250]
    source = write_clip(
        tmp_path / "in.mp4",
        pix_fmt="yuv420p10le",
        matrix=1,
        times_ms=times,
        audio=AUDIO_TRACKS,
        subtitles="mov_text",
    )
    out = tmp_path / "out.mp4"
    args = ["upscale", str(source), "--scale", "2", "--steps", "1", "--model", str(sr_model)]
    assert main(["--quiet", *args, "--no-cache", "-o", str(out)]) == 0
    seen = probe(out)
    assert (seen["size"], seen["pix_fmt"], seen["tags"]) == ((64, 48), "yuv420p10le", (1, 1, 1))
    assert stream_tags(out) == [
        *(("audio", "aac", language, title) for language, title in AUDIO_TRACKS),
        ("subtitle", "mov_text", "deu", "Untertitel"),
    ]
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        shown = sorted(
            float(packet.pts * packet.time_base) * 1000
            for packet in container.demux(stream)
            if packet.size
        )
    assert np.abs(np.array(shown) - times).max() < 1


def test_an_odd_size_with_subsampled_chroma_is_refused_before_any_work(tmp_path, capfd):
    from wdiff.cli import main

    source = write_clip(tmp_path / "odd.mp4", frames=3, size=(45, 31), pix_fmt="yuv444p")
    mask = tmp_path / "mask.png"
    hole = np.zeros((31, 45, 3), np.uint8)
    hole[8:20, 10:30] = 255
    av.VideoFrame.from_ndarray(hole, format="rgb24").to_image().save(mask)
    cache, out = tmp_path / "cache", tmp_path / "out.mp4"
    args = ["inpaint", str(source), "--mask", str(mask), "--steps", "1", "--pix-fmt", "yuv420p"]
    assert main([*args, "--cache-dir", str(cache), "-o", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "45x31" in err[0] and "yuv444p" in err[0], err
    assert not out.exists() and not list(cache.rglob("*.safetensors"))  # no flows computed
