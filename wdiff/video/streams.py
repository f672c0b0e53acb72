"""The input's audio and subtitle streams carried into an output, interleaved with its video.

Every audio and subtitle stream is copied packet for packet with its language, title and
disposition, from the output's first frame to its end. Only what the container cannot hold
is re-encoded: audio to AAC, text subtitles to the container's text format (mov_text in
mp4/mov, SubRip in Matroska); bitmap subtitles that cannot go in are left out. Both are said
in one warning.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import av

from wdiff.video.container import ffmpeg_name
from wdiff.video.info import VideoInfo

# Audio codecs each container can carry as they are; anything else is re-encoded to AAC.
_AUDIO_COPYABLE = {
    "mp4": {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": None,  # anything
}
# subtitle codecs whose decoders give text (ASS events), and the text codec of each container
_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
_TEXT_CODEC = {"mp4": "mov_text", "mov": "mov_text", "matroska": "srt"}
_KEPT_TAGS = ("language", "title", "handler_name")


class StreamCopier:
    """Moves ``source``'s audio and subtitle packets into ``output`` up to a given output time.

    ``offset``: the source time (seconds) that is output time 0. ``warn`` hears once what had
    to be re-encoded or left out.
    """

    def __init__(
        self,
        source: VideoInfo,
        output: av.container.OutputContainer,
        container_format: str,
        offset: float,
        warn: Callable[[str], None],
    ):
        self._input = av.open(ffmpeg_name(source.path), metadata_errors="ignore")
        self._output = output
        self._offset = offset
        self._tracks: dict[int, _Track] = {}
        changes = []
        for stream in self._input.streams:
            if stream.type not in ("audio", "subtitle"):
                continue
            track, change = _track(stream, output, container_format)
            if track is not None:
                self._tracks[stream.index] = track
            if change:
                changes.append(f"{stream.type} {stream.index} {change}")
        if changes:
            kind = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv"}[container_format]
            warn(f"{'; '.join(changes)}: a {kind} file cannot hold them as they are")
        streams = [self._input.streams[index] for index in self._tracks]
        self._packets = self._input.demux(*streams) if streams else iter(())
        self._pending = None
        self._done = not streams

    def copy_until(self, seconds: float, final: bool = False) -> None:
        """Mux source packets that start before output time ``seconds``; ``final``: the
        output ends there, flush the encoders."""
        while not self._done:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._done = True
                break
            if packet.pts is None:
                continue  # a flush packet, or one without a time
            start = float(packet.pts * packet.time_base) - self._offset
            if start >= seconds:
                self._pending = packet
                if final:
                    self._done = True
                break
            duration = float((packet.duration or 0) * packet.time_base)
            if self._offset > 0 and start + duration <= 0:
                continue  # before the excerpt; from the start, priming packets (pts < 0) stay
            shift = int(round(self._offset / packet.time_base))
            self._tracks[packet.stream.index].emit(packet, shift, self._output)
        if final:
            for track in self._tracks.values():
                track.flush(self._output)

    def close(self) -> None:
        self._input.close()


def _track(stream, output, container_format: str) -> tuple[_Track | None, str]:
    """How ``stream`` goes into ``output``, and what changed ('' when copied as it is)."""
    name = stream.codec_context.name
    if stream.type == "audio":
        copyable = _AUDIO_COPYABLE[container_format]
        if copyable is None or name in copyable:
            return _Copy(_tagged(output.add_stream_from_template(stream), stream)), ""
        return _AudioToAac(stream, output), f"({name}) re-encoded to AAC"
    text_codec = _TEXT_CODEC[container_format]
    if name == text_codec or (container_format == "matroska" and name != "mov_text"):
        return _Copy(_tagged(output.add_stream_from_template(stream), stream)), ""
    if name in _TEXT_SUBTITLES:
        return _TextSubtitles(stream, output, text_codec), f"({name}) converted to {text_codec}"
    return None, f"({name}) left out"


def _tagged(out_stream, stream):
    """``out_stream`` with ``stream``'s language, title and disposition (mp4 reads its track
    title back as ``name``)."""
    tags = {key.lower(): value for key, value in stream.metadata.items()}
    if "title" not in tags and "name" in tags:
        tags["title"] = tags["name"]
    for key in _KEPT_TAGS:
        if key in tags:
            out_stream.metadata[key] = tags[key]
    out_stream.disposition = stream.disposition
    return out_stream


class _Track:
    def emit(self, packet: av.Packet, shift: int, output) -> None:
        raise NotImplementedError

    def flush(self, output) -> None:
        """Nothing to flush for copied packets."""


class _Copy(_Track):
    def __init__(self, out_stream):
        self.out_stream = out_stream

    def emit(self, packet: av.Packet, shift: int, output) -> None:
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.out_stream
        output.mux(packet)


class _AudioToAac(_Track):
    """Decoded, resampled and encoded to AAC (stereo beyond two channels)."""

    def __init__(self, stream, output):
        context = stream.codec_context
        self.out_stream = _tagged(output.add_stream("aac", rate=context.sample_rate), stream)
        self.out_stream.layout = context.layout.name if context.channels <= 2 else "stereo"
        self._resampler = av.AudioResampler(
            format="fltp", layout=self.out_stream.layout, rate=context.sample_rate
        )

    def emit(self, packet: av.Packet, shift: int, output) -> None:
        for frame in packet.decode():
            frame.pts = None
            for resampled in self._resampler.resample(frame):
                output.mux(self.out_stream.encode(resampled))

    def flush(self, output) -> None:
        output.mux(self.out_stream.encode(None))


class _TextSubtitles(_Track):
    """Text subtitles decoded to their ASS events and encoded in the container's text codec,
    each at its own time."""

    def __init__(self, stream, output, codec: str):
        self._decoder = stream.codec_context
        self.out_stream = _tagged(output.add_stream(codec), stream)
        context = self.out_stream.codec_context
        context.time_base = Fraction(1, 1000)
        self._decoder.open(strict=False)  # its subtitle header exists once it is open
        context.subtitle_header = self._decoder.subtitle_header or _ASS_HEADER

    def emit(self, packet: av.Packet, shift: int, output) -> None:
        if not packet.size:
            return
        subtitles = self._decoder.decode2(packet)
        if subtitles is None:
            return  # an empty cue (mov_text clears the screen with one)
        text = b"\n".join(rect.ass for rect in subtitles if hasattr(rect, "ass"))
        if not text:
            return
        duration = packet.duration or 0
        events = av.subtitles.subtitle.SubtitleSet.create(text, 0, duration, 0)
        encoded = self.out_stream.codec_context.encode_subtitle(events)
        encoded.pts = encoded.dts = packet.pts - shift
        encoded.duration = duration
        encoded.time_base = packet.time_base
        encoded.stream = self.out_stream
        output.mux(encoded)


_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    b"BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    b"BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    b"\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\n"
)
