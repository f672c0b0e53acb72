"""Random Fourier features evaluated on a square lattice at once, the fast path's building block.

On a lattice, ``xi`` is the real part of a type-1 non-uniform FFT (the frequencies ``z`` are the
non-uniform points), which finufft computes in O(J + S^2 log S) per S x S lattice on the CPU; on
CUDA, or without finufft, separable products
(``cos(<z, p> + b) = Re(e^{i b} e^{i z_x x} e^{i z_y y})``) in O(J S^2).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from wdiff.noise.features import RandomFourierFeatures, wrap_phase


class Lattice:
    """Lattice evaluation of one set of features; keeps the finufft plans and spline gains of
    the lattices it has seen."""

    def __init__(self, features: RandomFourierFeatures):
        self.features = features
        self._gains: dict[float, torch.Tensor] = {}
        self._plans: dict[tuple[float, int], list] = {}

    def evaluate(
        self, x0: float, y0: float, step: float, size: int, spline: bool = False
    ) -> torch.Tensor:
        """Evaluation at ``(x0 + a step, y0 + b step)`` for ``a, b`` in ``[0, size)`` ->
        ``(C, size (b), size (a))`` float32: by NUFFT on the CPU (about 1e-6 from ``direct``),
        else by :meth:`products`. ``spline``: the cubic B-spline coefficients that interpolate
        these samples instead, exactly: the prefilter divides each wave ``e^{i omega k}`` by the
        spline's response ``(4 + 2 cos omega) / 6`` per axis."""
        features = self.features
        plans = self._plans_for(step, size) if features.z.device.type == "cpu" else None
        gain = self._spline_gain(step) if spline else None
        if plans is None:
            offsets = torch.arange(size, dtype=torch.float64, device=features.z.device) * step
            return self.products(x0 + offsets, y0 + offsets, gain)
        weights = features.w if gain is None else features.w * gain
        # centre the modes: sample a = size // 2 + k for the mode k in [-size // 2, size // 2)
        centre = torch.tensor([x0, y0], dtype=torch.float64) + (size // 2) * step
        phase = torch.remainder(features.b + features.z @ centre, 2 * math.pi)
        strengths = (weights * torch.exp(1j * phase)).numpy()  # (C, J)
        out = np.empty((len(plans), size, size), dtype=np.float32)
        for channel, plan in enumerate(plans):
            out[channel] = plan.execute(strengths[channel]).real  # (y mode, x mode)
        return torch.from_numpy(out) * math.sqrt(2.0 / features.count)

    def products(
        self, xs: torch.Tensor, ys: torch.Tensor, gain: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Evaluation on the lattice ``xs`` x ``ys`` (float64) by separable products ->
        (C, len(ys), len(xs)) float32; ``gain`` (C, J) scales each feature's weight."""
        z, w, b = self.features.z, self.features.w, self.features.b
        weights = w if gain is None else w * gain
        coefficient = (weights * torch.exp(1j * b)).to(torch.complex64)  # (C, J)
        along_x = torch.exp(1j * wrap_phase(xs[None, :, None] * z[:, None, :, 0]))
        along_y = torch.exp(1j * wrap_phase(ys[None, :, None] * z[:, None, :, 1]))
        along_x = along_x.to(torch.complex64)
        along_y = along_y.to(torch.complex64) * coefficient[:, None, :]
        values = torch.bmm(along_y, along_x.transpose(1, 2)).real
        return values * math.sqrt(2.0 / self.features.count)

    def _spline_gain(self, step: float) -> torch.Tensor:
        """(C, J): 1 / the cubic B-spline's response to each wave on a lattice of ``step``."""
        if step not in self._gains:
            response = (4 + 2 * torch.cos(self.features.z * step)) / 6  # (C, J, 2)
            self._gains[step] = 1.0 / response.prod(-1)
        return self._gains[step]

    def _plans_for(self, step: float, size: int) -> list | None:
        """finufft type-1 plans with this lattice's points ``z * step`` set, one per channel
        (None without finufft). One thread: its sums then come in a fixed order."""
        key = (step, size)
        if key not in self._plans:
            try:
                import finufft
            except ImportError:
                return None
            plans = []
            for frequencies in self.features.z.numpy():
                # FFTW_ESTIMATE (64): a plan chosen without timing, the same in every process
                plan = finufft.Plan(1, (size, size), eps=1e-7, isign=1, nthreads=1, fftw=64)
                # y first: the modes come out (y, x), as the lattice's rows and columns
                plan.setpts(frequencies[:, 1] * step, frequencies[:, 0] * step)
                plans.append(plan)
            self._plans[key] = plans
        return self._plans[key]
