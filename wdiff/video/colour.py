"""How a video's YUV samples map to RGB: matrix, primaries, transfer and range, carried from
the input to the output (tagged, and converted with the same matrix and range both ways).

Values are FFmpeg's ``AVColorSpace``/``AVColorPrimaries``/``AVColorTransferCharacteristic``
codes, as PyAV's codec contexts and frames hold them; :meth:`Colour.names` gives ffprobe's
names. A stream that does not say is read as players guess: BT.709 from 1280x720 (or
taller than 576 lines) up, BT.601 (SMPTE 170M) below, limited range; and the output is then
tagged with that guess, so that it shows as the input did.
"""

from __future__ import annotations

from dataclasses import dataclass

UNSPECIFIED = 2  # the same code in all three tables
# matrix code -> (swscale's name for its coefficients, ffprobe's name); the matrices a YUV
# output can use: RGB (0), YCgCo (8) and ICtCp (14) are not among them
_MATRICES = {
    1: ("itu709", "bt709"),
    4: ("fcc", "fcc"),
    5: ("itu601", "bt470bg"),
    6: ("itu601", "smpte170m"),
    7: ("smpte240m", "smpte240m"),
    9: ("bt2020", "bt2020nc"),
    10: ("bt2020", "bt2020c"),
}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}
_TRANSFERS = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    18: "arib-std-b67",
}
# what an untagged primaries/transfer is taken to be, from the matrix
_FAMILY = {1: (1, 1), 4: (4, 4), 5: (5, 6), 6: (6, 6), 7: (7, 7), 9: (9, 14), 10: (9, 14)}


@dataclass(frozen=True)
class Colour:
    """A stream's colour description (FFmpeg codes) and whether its YUV is full range."""

    matrix: int = 1
    primaries: int = 1
    transfer: int = 1
    full_range: bool = False

    @classmethod
    def from_tags(
        cls, matrix: int, primaries: int, transfer: int, full_range: bool, size: tuple[int, int]
    ) -> Colour:
        """The colour of a YUV stream with these tags (``size``: its coded width, height),
        untagged or unusable parts filled in as players guess them."""
        if matrix not in _MATRICES:
            matrix = guess_matrix(size)
        family = _FAMILY[matrix]
        return cls(
            matrix=matrix,
            primaries=primaries if primaries in _PRIMARIES else family[0],
            transfer=transfer if transfer in _TRANSFERS else family[1],
            full_range=full_range,
        )

    @property
    def sws_matrix(self) -> str:
        """swscale's name for the matrix (``src_colorspace``/``dst_colorspace`` of PyAV)."""
        return _MATRICES[self.matrix][0]

    @property
    def sws_range(self) -> str:
        """PyAV's ``ColorRange`` name: ``JPEG`` (full) or ``MPEG`` (limited)."""
        return "JPEG" if self.full_range else "MPEG"

    @property
    def range_code(self) -> int:
        """FFmpeg's ``AVColorRange``: 2 full, 1 limited."""
        return 2 if self.full_range else 1

    def names(self) -> dict[str, str]:
        """As ffprobe prints them: color_space, color_primaries, color_transfer, color_range."""
        return {
            "color_space": _MATRICES[self.matrix][1],
            "color_primaries": _PRIMARIES[self.primaries],
            "color_transfer": _TRANSFERS[self.transfer],
            "color_range": "pc" if self.full_range else "tv",
        }


def guess_matrix(size: tuple[int, int]) -> int:
    """BT.709 for HD sizes, BT.601 (SMPTE 170M) below, as players guess an untagged stream."""
    width, height = size
    return 1 if width >= 1280 or height > 576 else 6


def default_colour(size: tuple[int, int]) -> Colour:
    """The colour of an untagged YUV stream of this size."""
    return Colour.from_tags(UNSPECIFIED, UNSPECIFIED, UNSPECIFIED, False, size)
