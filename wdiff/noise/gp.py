"""Gaussian-process noise by Random Fourier Features (Warped Diffusion, Daras et al. 2024, §3.1).

Each channel is one random function on the plane,
``xi(p) = sqrt(2/J) * sum_j w_j cos(<z_j, p> + b_j)``, with ``w ~ N(0, 1)``, ``b ~ U(0, 2 pi)``
and ``z ~ N(0, l^-2 I)`` truncated at ``truncation`` standard deviations per axis: a
squared-exponential kernel, band-limited. Coordinates ``p`` are in cells of the noise grid; the
paper's length scale ``eps = 2 / (pi * resolution)`` on the unit square is ``l = 2 / pi`` cells,
so the spectrum ends at pi per cell (Nyquist).

A frame's noise is ``xi`` evaluated at a *position map*: frame 0 at the grid itself, frame j at
``p_j(x) = p_{j-1}(x + backward(x))``, so warping never interpolates noise, only positions.
Cells whose backward flow is invalid get positions of their own (fresh noise): the continued
map moved into a copy of the plane far away where nothing on screen clashes (``_rehome``);
with ``extend=True`` they keep the continuous extension (the map followed outside the frame).
Direct evaluation costs O(cells * J); the fast path evaluates ``xi`` once per tile of the plane
on a lattice ``oversample`` times finer, pre-filters it for cubic B-spline interpolation, and
then reads any position from 4 x 4 lattice samples. On a lattice, ``xi`` is the real part of a
type-1 non-uniform FFT (the frequencies ``z`` are the non-uniform points), which finufft
computes in O(J + S^2 log S) per S x S tile on the CPU; on CUDA, or without finufft, separable
products (``cos(<z, p> + b) = Re(e^{i b} e^{i z_x x} e^{i z_y y})``) in O(J S^2).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wdiff.flow.motion import Motion
from wdiff.noise.base import BilinearWarper, NoiseState, Warper, generator

FRESH_STRIDE = float(1 << 20)  # cells between generations of fresh positions (independent noise)
BATCH_STRIDE = float(1 << 30)  # cells between the videos of a batch


@dataclass
class RandomFourierFeatures:
    """J features per channel: frequencies ``z`` (C, J, 2), weights ``w`` (C, J), phases ``b``."""

    z: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor

    @classmethod
    def sample(
        cls,
        channels: int,
        count: int,
        seed: int,
        length_scale: float = 2 / math.pi,
        truncation: float = 2.0,
        device="cpu",
    ) -> RandomFourierFeatures:
        gen = generator(seed, "gp-features", device="cpu")
        sigma = 1.0 / length_scale
        z = torch.randn(channels, count, 2, generator=gen, dtype=torch.float64)
        while True:  # truncated normal by rejection, per axis
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=gen, dtype=torch.float64)
        w = torch.randn(channels, count, generator=gen, dtype=torch.float64)
        b = torch.rand(channels, count, generator=gen, dtype=torch.float64) * 2 * math.pi
        return cls((z * sigma).to(device), w.to(device), b.to(device))

    @property
    def count(self) -> int:
        return self.w.shape[1]

    def direct(
        self, positions: torch.Tensor, chunk: int = 4096, exact: bool = True
    ) -> torch.Tensor:
        """Evaluation at ``positions`` (P, 2) (x, y) -> (C, P). O(P * J * C).

        ``exact``: float64 throughout (the reference). Otherwise the phases are formed in
        float64, reduced mod 2 pi, and the cosines taken in float32 (about 1e-6 off, 2x faster).
        """
        out = []
        scale = math.sqrt(2.0 / self.count)
        for start in range(0, positions.shape[0], chunk):
            p = positions[start : start + chunk].to(self.z)
            phase = torch.einsum("pd,cjd->cpj", p, self.z) + self.b[:, None, :]
            if exact:
                out.append(scale * torch.einsum("cpj,cj->cp", torch.cos(phase), self.w))
            else:
                waves = torch.cos(_wrap(phase).float())
                out.append(scale * torch.einsum("cpj,cj->cp", waves, self.w.float()))
        return torch.cat(out, dim=1)

    def on_lattice(
        self, x0: float, y0: float, step: float, size: int, spline: bool = False
    ) -> torch.Tensor:
        """Evaluation at ``(x0 + a step, y0 + b step)`` for ``a, b`` in ``[0, size)`` ->
        ``(C, size (b), size (a))`` float32: by NUFFT on the CPU (about 1e-6 from ``direct``),
        else by ``on_grid``. ``spline``: the cubic B-spline coefficients that interpolate these
        samples instead, exactly: the prefilter divides each wave ``e^{i omega k}`` by the
        spline's response ``(4 + 2 cos omega) / 6`` per axis."""
        plans = self._plans(step, size) if self.z.device.type == "cpu" else None
        gain = self._spline_gain(step) if spline else None
        if plans is None:
            offsets = torch.arange(size, dtype=torch.float64, device=self.z.device) * step
            return self.on_grid(x0 + offsets, y0 + offsets, gain)
        weights = self.w if gain is None else self.w * gain
        # centre the modes: sample a = size // 2 + k for the mode k in [-size // 2, size // 2)
        centre = torch.tensor([x0, y0], dtype=torch.float64) + (size // 2) * step
        phase = torch.remainder(self.b + self.z @ centre, 2 * math.pi)
        strengths = (weights * torch.exp(1j * phase)).numpy()  # (C, J)
        out = np.empty((len(plans), size, size), dtype=np.float32)
        for channel, plan in enumerate(plans):
            out[channel] = plan.execute(strengths[channel]).real  # (y mode, x mode)
        return torch.from_numpy(out) * math.sqrt(2.0 / self.count)

    def _spline_gain(self, step: float) -> torch.Tensor:
        """(C, J): 1 / the cubic B-spline's response to each wave on a lattice of ``step``."""
        cache = self.__dict__.setdefault("_gain_cache", {})
        if step not in cache:
            response = (4 + 2 * torch.cos(self.z * step)) / 6  # (C, J, 2)
            cache[step] = 1.0 / response.prod(-1)
        return cache[step]

    def _plans(self, step: float, size: int) -> list | None:
        """finufft type-1 plans with this lattice's points ``z * step`` set, one per channel
        (None without finufft). One thread: its sums then come in a fixed order."""
        key = (step, size)
        cache = self.__dict__.setdefault("_plan_cache", {})
        if key not in cache:
            try:
                import finufft
            except ImportError:
                return None
            plans = []
            for frequencies in self.z.numpy():
                # FFTW_ESTIMATE (64): a plan chosen without timing, the same in every process
                plan = finufft.Plan(1, (size, size), eps=1e-7, isign=1, nthreads=1, fftw=64)
                # y first: the modes come out (y, x), as the lattice's rows and columns
                plan.setpts(frequencies[:, 1] * step, frequencies[:, 0] * step)
                plans.append(plan)
            cache[key] = plans
        return cache[key]

    def on_grid(
        self, xs: torch.Tensor, ys: torch.Tensor, gain: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Evaluation on the lattice ``xs`` x ``ys`` (float64) -> (C, len(ys), len(xs)) float32;
        ``gain`` (C, J) scales each feature's weight."""
        weights = self.w if gain is None else self.w * gain
        coefficient = (weights * torch.exp(1j * self.b)).to(torch.complex64)  # (C, J)
        along_x = torch.exp(1j * _wrap(xs[None, :, None] * self.z[:, None, :, 0]))
        along_y = torch.exp(1j * _wrap(ys[None, :, None] * self.z[:, None, :, 1]))
        along_x = along_x.to(torch.complex64)
        along_y = along_y.to(torch.complex64) * coefficient[:, None, :]
        values = torch.bmm(along_y, along_x.transpose(1, 2)).real
        return values * math.sqrt(2.0 / self.count)


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    """Reduce float64 phases mod 2 pi before the complex64 exponential keeps them accurate."""
    return torch.remainder(phase, 2 * math.pi)


def kernel(
    lag: torch.Tensor, length_scale: float = 2 / math.pi, truncation: float = 2.0
) -> torch.Tensor:
    """Covariance of the truncated-spectrum GP at integer lag ``(dx, dy)`` (..., 2): the product
    over axes of E[cos(z d)] for z ~ N(0, l^-2) truncated at ``truncation`` sigma."""
    sigma = 1.0 / length_scale
    grid = torch.linspace(-truncation, truncation, 20001, dtype=torch.float64)
    density = torch.exp(-0.5 * grid**2)
    density = density / density.sum()
    lag = lag.to(torch.float64)
    per_axis = (torch.cos(lag[..., None] * grid * sigma) * density).sum(-1)
    return per_axis.prod(-1)


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

    def _build(self, tile_x: int, tile_y: int) -> torch.Tensor:
        step = 1.0 / self.oversample
        corner = -self.halo * step
        x0, y0 = tile_x * self.tile + corner, tile_y * self.tile + corner
        coefficients = self.features.on_lattice(x0, y0, step, self.size, spline=True)
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
            tile_x, tile_y = divmod(key, _KEY_SPAN)
            if tile_y >= _KEY_SPAN // 2:
                tile_x, tile_y = tile_x + 1, tile_y - _KEY_SPAN
            slot_list.append(self._store(key, self._build(tile_x, tile_y)))
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
            tile_x, tile_y = divmod(key, _KEY_SPAN)
            if tile_y >= _KEY_SPAN // 2:
                tile_x, tile_y = tile_x + 1, tile_y - _KEY_SPAN
            self._store(key, self._build(tile_x, tile_y))
        keys, counts = tensors["spent_keys"].tolist(), tensors["spent_counts"].tolist()
        self.spent = dict(zip(keys, counts, strict=True))

    def _evict(self, used: set) -> None:
        if len(self.slots) <= self.keep:
            return
        for key in [k for k in self.slots if k not in used][: len(self.slots) - self.keep]:
            self.free.append(self.slots.pop(key))


_KEY_SPAN = 1 << 32  # tile key = tile_x * _KEY_SPAN + tile_y


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


@dataclass
class GPState:
    positions: torch.Tensor  # (B, 2, h, w) float64, cells


class GPWarper(Warper):
    """Warped GP noise: positions follow the flow, noise is ``xi`` read at the positions."""

    name = "gp"
    extra_type = GPState

    def __init__(
        self,
        features: int = 3000,
        length_scale: float = 2 / math.pi,
        truncation: float = 2.0,
        extend: bool = False,
        fast: bool = True,
        oversample: int = 4,
        tile: int = 32,
    ):
        self.feature_count = features
        self.length_scale = length_scale
        self.truncation = truncation
        self.extend = extend
        self.fast = fast
        self.oversample = oversample
        self.tile = tile
        self._bank: TileBank | None = None
        self._bank_seed: tuple | None = None

    def init(self, shape, seed: int, device="cpu") -> NoiseState:
        batch, channels, height, width = shape
        positions = _grid(batch, height, width, device)
        positions[:, 0] += (
            BATCH_STRIDE * torch.arange(batch, device=device, dtype=torch.float64)[:, None, None]
        )
        state = NoiseState(0, torch.empty(0), seed, GPState(positions))
        state.noise = self.evaluate(state, channels)
        return state

    def state_tensors(self, state: NoiseState) -> dict[str, torch.Tensor]:
        tensors = super().state_tensors(state)
        if self._bank is not None and self._bank_seed[0] == state.seed:
            tensors |= {f"bank.{k}": v for k, v in self._bank.state_tensors().items()}
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor], frame: int, seed: int) -> NoiseState:
        state = super().load_state(tensors, frame, seed)
        bank = {key[5:]: value for key, value in tensors.items() if key.startswith("bank.")}
        if bank:
            self._features(seed, state.noise.shape[1], state.noise.device).load_state_tensors(bank)
        return state

    def _features(self, seed: int, channels: int, device) -> TileBank:
        key = (seed, channels, str(device))
        if self._bank is None or self._bank_seed != key:
            features = RandomFourierFeatures.sample(
                channels, self.feature_count, seed, self.length_scale, self.truncation, device
            )
            self._bank = TileBank(features, self.tile, self.oversample)
            self._bank_seed = key
        return self._bank

    def evaluate(self, state: NoiseState, channels: int) -> torch.Tensor:
        positions = state.extra.positions
        batch, _, height, width = positions.shape
        bank = self._features(state.seed, channels, positions.device)
        flat = positions.permute(0, 2, 3, 1).reshape(-1, 2)
        values = bank.evaluate(flat) if self.fast else bank.features.direct(flat).float()
        return values.view(channels, batch, height, width).permute(1, 0, 2, 3).contiguous()

    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        frame = state.frame + 1
        positions = state.extra.positions
        batch, _, height, width = positions.shape
        backward = motion.backward.to(torch.float64)
        grid = _grid(batch, height, width, positions.device)
        landing = grid + backward
        normalised = torch.stack(
            [landing[:, 0] * 2 / max(width - 1, 1) - 1, landing[:, 1] * 2 / max(height - 1, 1) - 1],
            dim=-1,
        )
        # positions = landing point + displacement there; the displacement is held constant
        # beyond the frame's edge, which is the continuous extension of the map
        displacement = positions - grid
        smooth = landing + F.grid_sample(
            displacement, normalised, mode="bilinear", padding_mode="border", align_corners=True
        )
        nearest = landing + F.grid_sample(
            displacement, normalised, mode="nearest", padding_mode="border", align_corners=True
        )
        # across a seam between generations, blending positions would invent far-away ones
        seam = (smooth - nearest).abs().amax(dim=1, keepdim=True) > 2.0
        moved = torch.where(seam, nearest, smooth)
        if not self.extend:
            births = ~motion.valid_backward.expand_as(moved[:, :1])[:, 0]
            if births.any():
                moved = _rehome(moved, births)
        next_state = NoiseState(frame, torch.empty(0), state.seed, GPState(moved))
        next_state.noise = self.evaluate(next_state, state.noise.shape[1])
        return next_state


_CLEARANCE = 3  # cells: beyond this the kernel is below 1e-3, the noise independent


def _slot(y: torch.Tensor) -> torch.Tensor:
    return torch.floor(y / FRESH_STRIDE + 0.5)


def _keys(cells: torch.Tensor) -> torch.Tensor:
    """Integer cells (..., 2) -> int64 keys (x may span the batch strides, y stays in a slot)."""
    cells = cells.long()  # in float64 the sum would round away y (2^59 has a 64-wide ulp)
    return (cells[..., 0] + (1 << 35)) * (1 << 24) + (cells[..., 1] + (1 << 23))


def _rehome(positions: torch.Tensor, births: torch.Tensor) -> torch.Tensor:
    """Give born cells (disoccluded or entering) fresh noise: their continued positions, moved to
    the first slot (a copy of the plane FRESH_STRIDE cells down) where they clash with no cell
    on screen. A clash is a cell within _CLEARANCE in the plane that is not where the same
    offset puts it on screen: such a pair would repeat noise between unrelated places, while a
    consistent neighbour (a pan writing new ground beside the last frame's births) is just the
    field going on. Slots are reused, so their tiles are evaluated once for many frames."""
    cells = positions.permute(0, 2, 3, 1)
    # only cells born before can be in the slots births go to (slot 0 is the screen's own)
    earlier = ~births & (_slot(positions[:, 1]) > 0)
    born, born_screen = cells[births], _screen_of(births)
    kept, kept_screen = cells[earlier], _screen_of(earlier)
    kept_slot = _slot(kept[:, 1])
    kept_local = torch.stack([kept[:, 0], kept[:, 1] - kept_slot * FRESH_STRIDE], dim=-1)
    born_local = torch.stack([born[:, 0], born[:, 1] - _slot(born[:, 1]) * FRESH_STRIDE], dim=-1)
    reach = torch.arange(-_CLEARANCE, _CLEARANCE + 1, device=positions.device, dtype=torch.float64)
    around = torch.stack(torch.meshgrid(reach, reach, indexing="xy"), dim=-1).reshape(-1, 2)
    near = _keys(torch.round(born_local)[:, None, :] + around[None])  # (n, 49)
    slot = torch.zeros(born.shape[0], dtype=torch.float64, device=positions.device)
    candidate = 1
    while (slot == 0).any():
        open_ = (slot == 0).nonzero().squeeze(1)
        in_slot = (kept_slot == candidate).nonzero().squeeze(1)
        clash = torch.zeros(open_.shape[0], dtype=torch.bool, device=positions.device)
        if in_slot.numel():
            taken, order = torch.sort(_keys(torch.round(kept_local[in_slot])))
            index = torch.searchsorted(taken, near[open_]).clamp_max(taken.numel() - 1)
            found = taken[index] == near[open_]
            occupant = in_slot[order[index]]  # (m, 49) indices into kept
            plane = kept_local[occupant] - born_local[open_, None, :]
            view = kept_screen[occupant] - born_screen[open_, None, :]
            clash = (found & ((plane - view).abs().amax(dim=-1) > 1.5)).any(dim=1)
        slot[open_[~clash]] = candidate
        candidate += 1
    born_local[:, 1] += slot * FRESH_STRIDE
    cells = cells.clone()
    cells[births] = born_local
    return cells.permute(0, 3, 1, 2)


def _screen_of(where: torch.Tensor) -> torch.Tensor:
    """Screen positions (n, 2) (x + the batch stride, y), float64, of the True cells of
    ``where`` (B, h, w), in the order boolean indexing takes them."""
    item, y, x = where.nonzero().to(torch.float64).unbind(1)
    return torch.stack([x + BATCH_STRIDE * item, y], dim=-1)


def _grid(batch: int, height: int, width: int, device) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64, device=device),
        torch.arange(width, dtype=torch.float64, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None].repeat(batch, 1, 1, 1)


def gp_noise(
    shape: tuple[int, int, int, int],
    generator: torch.Generator,
    length_scale: float = 2 / math.pi,
    truncation: float = 2.0,
) -> torch.Tensor:
    """Independent exact samples of the same GP on the grid, float32 ``(B, C, h, w)`` (training).

    The kernel is a product over axes, so a sample is ``R_y W R_x^T`` with W white and ``R``
    the symmetric square root of the 1-D covariance matrix: O(h w (h + w)) per item.
    """
    batch, channels, height, width = shape
    roots = [_axis_root(size, length_scale, truncation) for size in (height, width)]
    white = torch.randn(shape, generator=generator, dtype=torch.float64)
    return (roots[0] @ white @ roots[1].T).float()


@functools.lru_cache(maxsize=16)
def _axis_root(size: int, length_scale: float, truncation: float) -> torch.Tensor:
    lags = torch.arange(size, dtype=torch.float64)
    per_lag = kernel(torch.stack([lags, torch.zeros_like(lags)], -1), length_scale, truncation)
    distance = (lags[:, None] - lags[None]).abs().long()
    values, vectors = torch.linalg.eigh(per_lag[distance])  # Toeplitz: one value per lag
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


class BilinearGPWarper(BilinearWarper):
    """The paper's "bilinear (GP)" baseline: an exact GP sample (``gp_noise``) moved by bilinear
    interpolation like ``bilinear``, with fresh GP samples where the flow is invalid."""

    name = "bilinear-gp"

    def init(self, shape, seed: int, device="cpu") -> NoiseState:
        return NoiseState(0, gp_noise(shape, generator(seed, self.name, 0)).to(device), seed)

    def fresh(self, state: NoiseState, frame: int) -> torch.Tensor:
        noise = gp_noise(state.noise.shape, generator(state.seed, self.name, frame))
        return noise.to(state.noise.device)
