"""The fast path of GP noise: ``xi`` on square tiles of the plane, each held as the cubic
B-spline coefficients of a lattice ``oversample`` times finer (from :class:`Lattice`, the spline
prefilter folded in), so any position reads 4 x 4 coefficients instead of summing J waves."""

from __future__ import annotations

import torch

from wdiff.noise.features import RandomFourierFeatures
from wdiff.noise.lattice import Lattice

_KEY_SPAN = 1 << 32  # tile key = tile_x * _KEY_SPAN + tile_y


class TileBank:
    """``xi`` on square tiles of the plane, each ``tile`` cells wide, as the cubic B-spline
    coefficients of its samples ``oversample`` times finer; evaluated on demand and kept in one
    atlas tensor (tiles side by side), so a read takes 4 x 4 coefficients from one image."""

    COLUMNS = 16  # tiles per atlas row

    def __init__(
        self,
        features: RandomFourierFeatures,
        tile: int = 32,
        oversample: int = 4,
        keep: int = 4096,
        direct_below: int = 4,
    ):
        self.features = features
        self.lattice = Lattice(features)
        self.tile = tile
        self.oversample = oversample
        self.halo = 2  # the 4 x 4 spline taps of a position in the tile stay inside
        self.size = tile * oversample + 2 * self.halo
        self.keep = keep
        self.direct_below = direct_below
        self.slots: dict[int, int] = {}  # tile key -> atlas slot
        self.spent: dict[int, int] = {}
        self.free: list[int] = []
        channels = features.w.shape[0]
        self.atlas = torch.zeros(  # (H, W, C): tiles side by side, channels last
            self.size, self.size * self.COLUMNS, channels, device=features.z.device
        )

    def _build(self, key: int) -> torch.Tensor:
        tile_x, tile_y = divmod(key, _KEY_SPAN)
        if tile_y >= _KEY_SPAN // 2:
            tile_x, tile_y = tile_x + 1, tile_y - _KEY_SPAN
        step = 1.0 / self.oversample
        corner = -self.halo * step
        x0, y0 = tile_x * self.tile + corner, tile_y * self.tile + corner
        coefficients = self.lattice.evaluate(x0, y0, step, self.size, spline=True)
        return coefficients.to(self.features.z.device)

    def _store(self, key: int, values: torch.Tensor) -> int:
        slot = self.free.pop() if self.free else len(self.slots)
        row, column = divmod(slot, self.COLUMNS)
        rows = self.atlas.shape[0] // self.size
        if row >= rows:  # grow by doubling the rows
            grown = self.atlas.new_zeros(2 * rows * self.size, *self.atlas.shape[1:])
            grown[: rows * self.size] = self.atlas
            self.atlas = grown
        size = self.size
        self.atlas[row * size : (row + 1) * size, column * size : (column + 1) * size] = (
            values.permute(1, 2, 0)
        )
        self.slots[key] = slot
        return slot

    def evaluate(self, positions: torch.Tensor) -> torch.Tensor:
        """``xi`` at ``positions`` (P, 2) float64 -> (C, P) float32."""
        cells = torch.floor(positions / self.tile).long()
        keys = cells[:, 0] * _KEY_SPAN + cells[:, 1]
        unique, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
        slot_list = []
        for key, count in zip(unique.tolist(), counts.tolist(), strict=True):
            if key in self.slots:
                slot_list.append(self.slots[key])
                continue
            spent = self.spent.get(key, 0) + count
            if spent < self.direct_below:
                # few points in a tile not built: evaluate them directly until the points spent
                # on it would have paid for building it (ski rental: at most twice the best)
                self.spent[key] = spent
                slot_list.append(-1)
                continue
            slot_list.append(self._store(key, self._build(key)))
        slot_of_tile = torch.tensor(slot_list, device=positions.device, dtype=torch.long)
        row, column = slot_of_tile // self.COLUMNS, slot_of_tile % self.COLUMNS
        corner_of_tile = (row * self.atlas.shape[1] + column) * self.size  # flat atlas index
        local = (positions - cells.to(positions.dtype) * self.tile) * self.oversample + self.halo
        direct = (slot_of_tile < 0)[inverse]
        if not direct.any():
            out = _bspline(self.atlas, local, corner_of_tile[inverse])
        else:
            out = torch.empty(self.features.w.shape[0], positions.shape[0], device=positions.device)
            read = ~direct
            out[:, read] = _bspline(self.atlas, local[read], corner_of_tile[inverse[read]])
            out[:, direct] = self.features.direct(positions[direct], exact=False).float()
        self._evict(set(unique.tolist()))
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Which tiles are built (in the order they were) and the direct evaluations spent on the
        others: with them a new bank answers exactly as this one (tiles are rebuilt on load)."""
        return {
            "built": torch.tensor(list(self.slots), dtype=torch.int64),
            "spent_keys": torch.tensor(list(self.spent), dtype=torch.int64),
            "spent_counts": torch.tensor(list(self.spent.values()), dtype=torch.int64),
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.slots, self.free = {}, []
        for key in tensors["built"].tolist():
            self._store(key, self._build(key))
        keys, counts = tensors["spent_keys"].tolist(), tensors["spent_counts"].tolist()
        self.spent = dict(zip(keys, counts, strict=True))

    def _evict(self, used: set) -> None:
        if len(self.slots) <= self.keep:
            return
        for key in [k for k in self.slots if k not in used][: len(self.slots) - self.keep]:
            self.free.append(self.slots.pop(key))


def _bspline(atlas: torch.Tensor, local: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
    """Cubic B-spline interpolation of the coefficient ``atlas`` (H, W, C) -> (C, P).

    ``local`` (P, 2) float64 (x, y) in samples from the tile's corner, ``corner`` (P,) int64 the
    flat atlas index of that corner. The weights come from ``local`` alone and the 4x4
    coefficients are read by integer index, so a value does not depend on where in the atlas
    its tile sits (the bank fills slots in the order tiles are needed; a resumed run must give
    the same noise). Channels last: one read fetches a sample's C values together.
    """
    width, channels = atlas.shape[1], atlas.shape[2]
    base = torch.floor(local)
    t = (local - base).float()
    t2, t3 = t * t, t * t * t
    weights = torch.stack(  # (P, 4, 2): taps at base - 1 .. base + 2, for x and y
        [(1 - t) ** 3 / 6, 0.5 * t3 - t2 + 2 / 3, 0.5 * (t2 + t - t3) + 1 / 6, t3 / 6], dim=1
    )
    taps = (weights[:, :, None, 1] * weights[:, None, :, 0]).reshape(-1, 16, 1)
    whole = base.long()
    start = corner + (whole[:, 1] - 1) * width + whole[:, 0] - 1
    steps = torch.arange(4, device=local.device)
    offsets = (steps[:, None] * width + steps[None, :]).reshape(16)  # 4 rows (y) of 4 (x)
    index = (start[:, None] + offsets).reshape(-1)
    samples = atlas.view(-1, channels).index_select(0, index).view(-1, 16, channels)
    return (samples * taps).sum(1).T
