"""Small denoisers with known behaviour, for testing the samplers (not wdiff's models)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wdiff.diffusion import karras_sigmas


class _Base:
    space = "pixel"
    scale = 1
    dtype = torch.float32
    sigma_data = 0.5
    takes_prompt = False

    def sigmas(self, steps: int) -> torch.Tensor:
        return karras_sigmas(steps)

    def encode(self, frames):
        return frames

    def decode(self, x):
        return x

    def condition(self, task, frame, mask=None, prompt=None):
        return frame


class GaussianDenoiser(_Base):
    """The exact posterior mean for x0 ~ N(mean, data_cov) and noise ~ N(0, noise_cov), on
    images (B, 1, h, w) flattened to d = h * w: D = mean + S (S + s^2 K)^-1 (x - mean)."""

    channels = 1

    def __init__(self, mean: torch.Tensor, data_cov: torch.Tensor, noise_cov: torch.Tensor):
        self.mean, self.data_cov, self.noise_cov = (
            mean.double(),
            data_cov.double(),
            noise_cov.double(),
        )

    def __call__(self, x, sigma, cond):
        shape = x.shape
        flat = x.double().flatten(1) - self.mean
        system = self.data_cov + float(sigma) ** 2 * self.noise_cov
        gain = torch.linalg.solve(system, self.data_cov).T  # S (S + s^2 K)^-1 (symmetric parts)
        return (self.mean + flat @ gain.T).view(shape).to(x.dtype)


class ConvDenoiser(_Base):
    """EDM-preconditioned ``c_skip x + c_out tanh(conv3x3(c_in x))``: translation-equivariant
    away from the border (replicate padding). ``pinned`` adds a pattern fixed to the screen,
    which makes it deliberately non-equivariant."""

    def __init__(self, channels: int = 3, seed: int = 0, pinned: torch.Tensor | None = None):
        gen = torch.Generator().manual_seed(seed)
        self.channels = channels
        self.weight = torch.randn(channels, channels, 3, 3, generator=gen) * 0.4
        self.pinned = pinned

    def __call__(self, x, sigma, cond):
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        sd = self.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sigma**2 + sd**2).sqrt()
        inner = F.conv2d(F.pad(c_in * x, (1, 1, 1, 1), mode="replicate"), self.weight)
        out = torch.tanh(inner)
        if self.pinned is not None:
            out = out + self.pinned
        return c_skip * x + c_out * out


class DeepConvDenoiser(_Base):
    """``c_skip x + c_out conv(tanh(conv(... tanh(conv(c_in x)))))``: ``depth`` 3x3 layers of
    ``width`` channels, whose activations (unlike ConvDenoiser's) dwarf its input."""

    def __init__(self, channels: int = 3, width: int = 32, depth: int = 4, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        sizes = [channels] + [width] * depth + [channels]
        self.channels = channels
        self.weights = [
            torch.randn(out, into, 3, 3, generator=gen) / (3 * into**0.5)
            for into, out in zip(sizes, sizes[1:], strict=False)
        ]

    def __call__(self, x, sigma, cond):
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        sd = self.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        hidden = x / (sigma**2 + sd**2).sqrt()
        for number, weight in enumerate(self.weights):
            hidden = F.conv2d(F.pad(hidden, (1, 1, 1, 1), mode="replicate"), weight)
            if number < len(self.weights) - 1:
                hidden = torch.tanh(hidden)
        return c_skip * x + c_out * hidden


class SkipDenoiser(_Base):
    """``c_skip(sigma) x``: the ideal denoiser for x0 ~ N(0, sigma_data^2 I) under white noise."""

    channels = 3

    def __call__(self, x, sigma, cond):
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        return self.sigma_data**2 / (sigma**2 + self.sigma_data**2) * x
