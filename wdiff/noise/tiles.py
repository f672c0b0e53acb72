"""The fast path of GP noise: ``xi`` on square tiles of the plane, each held as the cubic
B-spline coefficients of a lattice ``oversample`` times finer (from :class:`Lattice`, the spline
prefilter folded in), so any position reads 4 x 4 coefficients instead of summing J waves."""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile

import numpy as np
import torch

from wdiff.noise.features import RandomFourierFeatures
from wdiff.noise.lattice import Lattice

_KEY_SPAN = 1 << 32  # tile key = tile_x * _KEY_SPAN + tile_y
ROOM = 4.0  # atlas tiles per tile's worth of positions a frame reads
SCRATCH = 64  # tiles of the scratch atlas, for a frame that reads more
# atlas tiles at most (0.43 GB at 3 channels): at 1920x1080 the warped noise of a long clip reads
# up to 14,400 tiles a frame (plane 0 and six fresh planes, planes.MAX_PLANES), which the atlas
# used to hold in memory; the rest comes through the scratch atlas (#18)
MAX_ATLAS = 2048
# spill file bytes at most (about 20,000 tiles at 3 channels), and never more than half the
# temporary folder's free space when the file is opened: the rest is built again when read, so a
# large clip cannot fill the disk the output and the resume state are written to (#18; with the
# fresh-plane cap a 1920x1080 clip levels off near 15,000 tiles, 3 GB)
MAX_SPILL = 4 << 30


class TileBank:
    """``xi`` on square tiles of the plane, each ``tile`` cells wide, as the cubic B-spline
    coefficients of its samples ``oversample`` times finer; built on demand into one atlas
    tensor (tiles side by side), so a read takes 4 x 4 coefficients from one image.

    Which tiles count as built is part of the noise: a position in a built tile is read from
    its spline, one in a tile not built is evaluated directly (about 1e-6 apart) until
    ``direct_below`` points have been spent on that tile. At most ``keep`` tiles count as built,
    the oldest not being read forgotten beyond that.

    The atlas is a cache of bounded size (#18): it keeps the tiles the last call (a frame) read,
    up to ``room`` tiles per tile's worth of positions in a call and ``max_atlas`` in all. The
    positions of warped noise spread over ever more tiles as a video goes on (fresh cells on
    many planes), so the built tiles outnumber it: with ``spill`` each tile is also written,
    once, to an unnamed scratch file (the system's temporary folder; its slot reused once the
    tile is forgotten) and read back from there when read again (about 100 times faster than
    building it on a CPU, and page cache instead of the process's memory); without, or once the
    disk refuses, it is built again; so is a tile that finds the file full (``max_spill`` bytes,
    at most half the free space of the temporary folder when the file was opened). Either way
    the coefficients are bit for bit the same. A
    call that reads more tiles than the atlas holds takes the rest ``scratch`` at a time through
    a small scratch atlas.
    """

    COLUMNS = 16  # tiles per atlas row

    def __init__(
        self,
        features: RandomFourierFeatures,
        tile: int = 32,
        oversample: int = 4,
        keep: int = 4096,
        direct_below: int = 4,
        room: float = ROOM,
        scratch: int = SCRATCH,
        spill: bool = True,
        max_atlas: int = MAX_ATLAS,
        max_spill: int = MAX_SPILL,
    ):
        self.features = features
        self.lattice = Lattice(features)
        self.tile = tile
        self.oversample = oversample
        self.halo = 2  # the 4 x 4 spline taps of a position in the tile stay inside
        self.size = tile * oversample + 2 * self.halo
        self.keep = keep
        self.direct_below = direct_below
        self.room = room
        self.scratch = scratch
        self.max_atlas = max(max_atlas, scratch)
        self.capacity = scratch  # atlas slots at most; grows with the positions a call reads
        self.built: dict[int, None] = {}  # tile keys counted as built, in the order they were
        self.spent: dict[int, int] = {}  # tile key -> points evaluated directly in it so far
        self.slots: dict[int, int] = {}  # tile key -> atlas slot, for the tiles in the atlas
        self.free: list[int] = []  # atlas slots free for reuse
        self.slots_made = 0  # slots ever used; the atlas has room for them
        self.builds = 0  # tiles built so far, again or not
        self.channels = features.w.shape[0]
        self.spill = spill
        self.max_spill = max_spill
        self._file = None  # the spill file, opened with the first tile written
        self._file_room = 0  # tiles the spill file may hold, set when it is opened
        self._file_slots: dict[int, int] = {}  # tile key -> its place in the spill file
        self._file_free: list[int] = []
        self._tile_shape = (self.size, self.size, self.channels)
        self._tile_bytes = self.size * self.size * self.channels * 4
        self.atlas = self._empty_atlas(1)  # (H, W, C): tiles side by side, channels last
        self._scratch_atlas: torch.Tensor | None = None

    def _empty_atlas(self, rows: int) -> torch.Tensor:
        size = self.size
        return torch.zeros(
            rows * size, size * self.COLUMNS, self.channels, device=self.features.z.device
        )

    def _build(self, key: int) -> torch.Tensor:
        """Tile ``key``'s coefficients, (size, size, C): the same bits whenever built."""
        self.builds += 1
        tile_x, tile_y = divmod(key, _KEY_SPAN)
        if tile_y >= _KEY_SPAN // 2:
            tile_x, tile_y = tile_x + 1, tile_y - _KEY_SPAN
        step = 1.0 / self.oversample
        corner = -self.halo * step
        x0, y0 = tile_x * self.tile + corner, tile_y * self.tile + corner
        coefficients = self.lattice.evaluate(x0, y0, step, self.size, spline=True)
        return coefficients.to(self.features.z.device).permute(1, 2, 0)

    def _slot(self, key: int) -> int:
        """The atlas slot of built tile ``key``, built there if absent; -2 when the atlas is
        full (the tile is read through the scratch atlas)."""
        if key in self.slots:
            return self.slots[key]
        if self.free:
            slot = self.free.pop()
        elif self.slots_made < self.capacity:
            slot, self.slots_made = self.slots_made, self.slots_made + 1
        else:
            return _OVERFLOW
        row, column = divmod(slot, self.COLUMNS)
        rows = self.atlas.shape[0] // self.size
        if row >= rows:  # grow by doubling the rows, up to the capacity
            most = -(-self.capacity // self.COLUMNS)
            grown = self._empty_atlas(min(max(2 * rows, row + 1), most))
            grown[: rows * self.size] = self.atlas
            self.atlas = grown
        size = self.size
        self.atlas[row * size : (row + 1) * size, column * size : (column + 1) * size] = (
            self._coefficients(key)
        )
        self.slots[key] = slot
        return slot

    def _coefficients(self, key: int) -> torch.Tensor:
        """Built tile ``key``'s coefficients (size, size, C): read back from the spill file if
        it is there, else built (and written there)."""
        place = self._file_slots.get(key)
        if place is not None:
            values = np.empty(self._tile_shape, dtype=np.float32)
            try:
                self._file.seek(place * self._tile_bytes)
                whole = self._file.readinto(memoryview(values).cast("B")) == self._tile_bytes
            except OSError:
                whole = False
            if whole:
                return torch.from_numpy(values).to(self.features.z.device)
            self._stop_spilling()
        values = self._build(key)
        if self.spill:
            self._write(key, values)
        return values

    def _write(self, key: int, values: torch.Tensor) -> None:
        """Keep tile ``key`` in the spill file; a disk that refuses ends the spilling."""
        try:
            if self._file is None:
                self._file = _scratch_file()
                free = shutil.disk_usage(tempfile.gettempdir()).free
                self._file_room = min(self.max_spill, free // 2) // self._tile_bytes
            if not self._file_free and len(self._file_slots) >= self._file_room:
                return  # full: this tile is built again when read again
            place = self._file_free.pop() if self._file_free else len(self._file_slots)
            self._file.seek(place * self._tile_bytes)
            self._file.write(values.contiguous().cpu().numpy().tobytes())
        except OSError:
            self._stop_spilling()
            return
        self._file_slots[key] = place

    def _stop_spilling(self) -> None:
        """Build tiles again from now on (the spill file could not be written or read)."""
        self.spill = False
        self._file_slots, self._file_free = {}, []
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def evaluate(self, positions: torch.Tensor) -> torch.Tensor:
        """``xi`` at ``positions`` (P, 2) float64 -> (C, P) float32."""
        room = math.ceil(self.room * positions.shape[0] / self.tile**2)
        self.capacity = min(max(self.capacity, room), self.max_atlas)
        cells = torch.floor(positions / self.tile)
        offsets = positions - cells * self.tile
        # a position a rounding error below a tile's edge gets an offset of exactly ``tile``
        # (e.g. -1.7e-16 - (-32) == 32.0): it belongs to the next tile, at offset 0, or its
        # spline taps would reach past its tile (and past the atlas)
        beyond = offsets >= self.tile
        cells = (cells + beyond).long()
        offsets = torch.where(beyond, offsets - self.tile, offsets)
        keys = cells[:, 0] * _KEY_SPAN + cells[:, 1]
        unique, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
        unique_keys = unique.tolist()
        reads = []  # per tile: read from its coefficients, or evaluated directly
        for key, count in zip(unique_keys, counts.tolist(), strict=True):
            if key not in self.built:
                spent = self.spent.get(key, 0) + count
                if spent < self.direct_below:
                    # few points in a tile not built: evaluate them directly until the points
                    # spent on it would have paid for building it (ski rental: at most twice
                    # the best)
                    self.spent[key] = spent
                    reads.append(False)
                    continue
                self.built[key] = None
            reads.append(True)
        self._release({key for key, read in zip(unique_keys, reads, strict=True) if read})
        slot_list = [
            self._slot(key) if read else _DIRECT
            for key, read in zip(unique_keys, reads, strict=True)
        ]
        slot_of_tile = torch.tensor(slot_list, device=positions.device, dtype=torch.long)
        local = offsets * self.oversample + self.halo
        direct = (slot_of_tile == _DIRECT)[inverse]
        if not direct.any():
            out = self._read(local, inverse, slot_of_tile, unique_keys)
        else:
            out = torch.empty(self.channels, positions.shape[0], device=positions.device)
            read = ~direct
            out[:, read] = self._read(local[read], inverse[read], slot_of_tile, unique_keys)
            out[:, direct] = self.features.direct(positions[direct], exact=False).float()
        self._forget(set(unique_keys))
        return out

    def _read(
        self,
        local: torch.Tensor,
        tile_of: torch.Tensor,
        slot_of_tile: torch.Tensor,
        keys: list[int],
    ) -> torch.Tensor:
        """The spline at ``local`` (R, 2) in tiles ``tile_of`` (R,) (indices into ``keys``,
        whose atlas slots are ``slot_of_tile``, _OVERFLOW for those not in it) -> (C, R)."""
        taps, whole = _spline_taps(local)
        slots = slot_of_tile[tile_of]
        overflow = slots == _OVERFLOW
        if not overflow.any():
            return _combine(_gather(self.atlas, whole, self._corners(slots)), taps)
        samples = torch.empty(local.shape[0], 16, self.channels, device=local.device)
        inside = ~overflow
        if inside.any():
            samples[inside] = _gather(self.atlas, whole[inside], self._corners(slots[inside]))
        if self._scratch_atlas is None:
            rows = -(-self.scratch // self.COLUMNS)
            self._scratch_atlas = self._empty_atlas(rows)
        scratch, size = self._scratch_atlas, self.size
        waiting = (slot_of_tile == _OVERFLOW).nonzero().squeeze(1)
        scratch_slot = torch.full_like(slot_of_tile, -1)
        for start in range(0, waiting.shape[0], self.scratch):
            chunk = waiting[start : start + self.scratch]
            for slot, tile in enumerate(chunk.tolist()):
                row, column = divmod(slot, self.COLUMNS)
                scratch[row * size : (row + 1) * size, column * size : (column + 1) * size] = (
                    self._coefficients(keys[tile])
                )
                scratch_slot[tile] = slot
            mine = scratch_slot[tile_of] >= 0
            corners = self._corners(scratch_slot[tile_of[mine]], scratch)
            samples[mine] = _gather(scratch, whole[mine], corners)
            scratch_slot[chunk] = -1
        return _combine(samples, taps)

    def _corners(self, slots: torch.Tensor, atlas: torch.Tensor | None = None) -> torch.Tensor:
        """The flat index in ``atlas`` (the bank's) of the corner of each slot of ``slots``."""
        width = (self.atlas if atlas is None else atlas).shape[1]
        row, column = slots // self.COLUMNS, slots % self.COLUMNS
        return (row * width + column) * self.size

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Which tiles are built (in the order they were) and the direct evaluations spent on the
        others: with them a new bank answers exactly as this one (tiles are built when read)."""
        return {
            "built": torch.tensor(list(self.built), dtype=torch.int64),
            "spent_keys": torch.tensor(list(self.spent), dtype=torch.int64),
            "spent_counts": torch.tensor(list(self.spent.values()), dtype=torch.int64),
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self._release(set())  # the atlas starts empty
        self.built = dict.fromkeys(tensors["built"].tolist())
        for key in [k for k in self._file_slots if k not in self.built]:
            self._file_free.append(self._file_slots.pop(key))
        keys, counts = tensors["spent_keys"].tolist(), tensors["spent_counts"].tolist()
        self.spent = dict(zip(keys, counts, strict=True))

    def _release(self, reading: set) -> None:
        """Free the atlas slots of the tiles not in ``reading`` (they stay built)."""
        for key in [k for k in self.slots if k not in reading]:
            self.free.append(self.slots.pop(key))

    def _forget(self, used: set) -> None:
        """Beyond ``keep`` built tiles, the oldest not in ``used`` count as not built again."""
        if len(self.built) <= self.keep:
            return
        for key in [k for k in self.built if k not in used][: len(self.built) - self.keep]:
            del self.built[key]
            if key in self.slots:
                self.free.append(self.slots.pop(key))
            if key in self._file_slots:
                self._file_free.append(self._file_slots.pop(key))


def _scratch_file():
    """An unnamed file in the system's temporary folder, gone when closed (or the process ends)."""
    return tempfile.TemporaryFile(buffering=0)


_DIRECT, _OVERFLOW = -1, -2  # a tile's slot: evaluated directly; built, not in the atlas


def _spline_taps(local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 16 cubic B-spline weights (P, 16, 1) of each position ``local`` (P, 2) float64 and
    its whole sample (P, 2) int64 (the taps are at whole - 1 .. whole + 2 per axis)."""
    base = torch.floor(local)
    t = (local - base).float()
    t2, t3 = t * t, t * t * t
    weights = torch.stack(  # (P, 4, 2): taps at base - 1 .. base + 2, for x and y
        [(1 - t) ** 3 / 6, 0.5 * t3 - t2 + 2 / 3, 0.5 * (t2 + t - t3) + 1 / 6, t3 / 6], dim=1
    )
    taps = (weights[:, :, None, 1] * weights[:, None, :, 0]).reshape(-1, 16, 1)
    return taps, base.long()


def _gather(atlas: torch.Tensor, whole: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
    """The 4 x 4 coefficients (P, 16, C) around each ``whole`` sample (P, 2) of the tile whose
    corner is at flat ``atlas`` index ``corner`` (P,)."""
    width, channels = atlas.shape[1], atlas.shape[2]
    start = corner + (whole[:, 1] - 1) * width + whole[:, 0] - 1
    steps = torch.arange(4, device=whole.device)
    offsets = (steps[:, None] * width + steps[None, :]).reshape(16)  # 4 rows (y) of 4 (x)
    index = (start[:, None] + offsets).reshape(-1)
    return atlas.view(-1, channels).index_select(0, index).view(-1, 16, channels)


def _combine(samples: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Cubic B-spline interpolation: the coefficients ``samples`` (P, 16, C) weighted by
    ``taps`` (P, 16, 1) -> (C, P). The weights come from the positions alone and the
    coefficients are read by integer index, so a value does not depend on where its tile sits
    (the bank fills slots in the order tiles are read, a tile comes back after it left the
    atlas, a resumed run starts with none: all must give the same noise), nor on how the
    samples were gathered (from the atlas and the scratch atlas in parts). Channels last: one
    read fetches a sample's C values together."""
    return (samples * taps).sum(1).T
