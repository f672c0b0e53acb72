"""Flow arithmetic: warping, forward-backward consistency, chaining, grid resizing, completion.

Conventions (DESIGN.md): flows are float ``(N, 2, H, W)`` in pixels, channels ``(dx, dy)``;
``flow_ab`` maps frame a to frame b: ``a(x) ≈ b(x + flow_ab(x))``. ``valid`` masks are bool
``(N, 1, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Lai et al. 2018 (after Sundaram et al. 2010): occluded where
# |f + b|^2 > ALPHA_1 (|f|^2 + |b|^2) + ALPHA_2, with b sampled at x + f(x).
ALPHA_1 = 0.01
ALPHA_2 = 0.5


def landing(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``x + flow(x)``: (x, y), each ``(N, H, W)``."""
    _, _, height, width = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, device=flow.device, dtype=flow.dtype),
        torch.arange(width, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    return xs + flow[:, 0], ys + flow[:, 1]


def sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """Positions ``x + flow(x)`` normalised for ``grid_sample``: ``(N, H, W, 2)``."""
    _, _, height, width = flow.shape
    x, y = landing(flow)
    x = x * (2.0 / max(width - 1, 1)) - 1.0
    y = y * (2.0 / max(height - 1, 1)) - 1.0
    return torch.stack([x, y], dim=-1)


def warp_bilinear(image: torch.Tensor, flow: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Sample ``image`` at ``x + flow(x)``: ``out(x) = image(x + flow(x))``, bilinear.

    With ``flow = flow_ab`` and ``image = frame b`` this reconstructs frame a.
    ``image`` ``(N, C, H, W)``; ``flow`` ``(N, 2, H, W)`` on the same grid.
    """
    return _warp(image, flow, "bilinear", padding)


def warp_bicubic(image: torch.Tensor, flow: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """:func:`warp_bilinear` with bicubic sampling (differentiable in ``image``).

    Bilinear sampling at a sub-pixel offset is also a low-pass filter: half a pixel halves the
    finest detail. Self-guidance compares the warped prediction with the anchor's, so a
    bilinear warp asks the prediction to be sharper than the anchor by that loss, and more so
    as lambda grows; bicubic sampling loses far less.
    """
    return _warp(image, flow, "bicubic", padding)


def _warp(image: torch.Tensor, flow: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    grid = sample_grid(flow.to(image.dtype))
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=True)


# How far outside the outermost pixel centres a landing point still counts as inside: its
# nearest pixel is then in the frame. With a bound of 0, an edge pixel of a still scene whose
# estimated flow is 0.01 px outward was invalid, and got fresh noise every frame: a flickering
# band 8 output pixels wide around an 8x upscale (#19).
EDGE_MARGIN = 0.5


def inside_frame(flow: torch.Tensor, margin: float = EDGE_MARGIN) -> torch.Tensor:
    """bool ``(N, 1, H, W)``: ``x + flow(x)`` lies inside the frame, or less than ``margin``
    pixels beyond its outermost pixel centres."""
    _, _, height, width = flow.shape
    x, y = landing(flow)
    inside_x = (x >= -margin) & (x <= width - 1 + margin)
    inside_y = (y >= -margin) & (y <= height - 1 + margin)
    return (inside_x & inside_y).unsqueeze(1)


def consistency_mask(flow_ab: torch.Tensor, flow_ba: torch.Tensor) -> torch.Tensor:
    """Valid pixels of frame a: they land inside frame b and pass the forward-backward test.

    Returns bool ``(N, 1, H, W)``.
    """
    back = warp_bilinear(flow_ba, flow_ab)
    error = ((flow_ab + back) ** 2).sum(1, keepdim=True)
    bound = ALPHA_1 * ((flow_ab**2).sum(1, keepdim=True) + (back**2).sum(1, keepdim=True)) + ALPHA_2
    return (error <= bound) & inside_frame(flow_ab)


def chain(flow_0a: torch.Tensor, flow_ab: torch.Tensor) -> torch.Tensor:
    """Compose ``flow_0a`` (frame 0 -> a) with ``flow_ab`` (a -> b) into frame 0 -> b."""
    return flow_0a + warp_bilinear(flow_ab, flow_0a)


def chain_valid(
    flow_0a: torch.Tensor, valid_0a: torch.Tensor, valid_ab: torch.Tensor
) -> torch.Tensor:
    """Validity of the chained flow: valid up to a, and valid from a on at the landing point."""
    landed = warp_bilinear(valid_ab.to(flow_0a.dtype), flow_0a, padding="zeros")
    return valid_0a & (landed > 0.999)


def resize_to_grid(
    flow: torch.Tensor, valid: torch.Tensor | None, factor: int, min_valid: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pixel flow -> a grid ``factor`` times coarser (e.g. a VAE latent grid).

    The only place pixel flow meets a coarser grid: area-average over each ``factor`` x
    ``factor`` cell, divide by ``factor`` (grid units). A cell is valid when at least
    ``min_valid`` of its pixels are. Sizes that are not multiples of ``factor`` are padded at
    the bottom/right by repeating the edge (the grid has ``ceil(size / factor)`` cells).
    """
    if factor == 1:
        return flow, valid
    height, width = flow.shape[-2:]
    pad = (0, (-width) % factor, 0, (-height) % factor)
    if any(pad):
        flow = F.pad(flow, pad, mode="replicate")
        if valid is not None:
            valid = F.pad(valid.float(), pad, mode="replicate") > 0.5
    coarse = F.avg_pool2d(flow, factor) / factor
    if valid is None:
        return coarse, None
    fraction = F.avg_pool2d(valid.float(), factor)
    return coarse, fraction >= min_valid


def complete_in_mask(flow: torch.Tensor, mask: torch.Tensor, iterations: int = 40) -> torch.Tensor:
    """Fill flow inside ``mask`` (bool ``(N, 1, H, W)``, True = missing) from its surroundings.

    The fill is harmonic (the smoothest field that meets the known flow at the hole's edge; it
    reproduces any affine motion exactly), solved coarse to fine. Frames whose mask covers
    everything are left as they are.
    """
    filled = flow.clone()
    for index in range(flow.shape[0]):
        known = ~mask[index, 0].to(flow.device)
        if known.all() or not known.any():
            continue
        filled[index] = _harmonic_fill(flow[index].float(), known, iterations).to(flow.dtype)
    return filled


def _harmonic_fill(values: torch.Tensor, known: torch.Tensor, iterations: int) -> torch.Tensor:
    """Solve Laplace's equation in ``~known`` for ``values`` ``(C, H, W)``; full multigrid start."""
    height, width = known.shape
    if min(height, width) > 8:
        padded = F.pad(values[None], (0, width % 2, 0, height % 2), mode="replicate")[0]
        weight = F.pad(known[None, None].float(), (0, width % 2, 0, height % 2), mode="replicate")
        pooled_weight = F.avg_pool2d(weight, 2)[0, 0]
        pooled = F.avg_pool2d((padded * weight[0])[None], 2)[0] / pooled_weight.clamp_min(1e-6)
        coarse = _harmonic_fill(pooled, pooled_weight > 0.999, iterations)
        start = F.interpolate(coarse[None], scale_factor=2, mode="bilinear", align_corners=False)
        start = start[0, :, :height, :width]
    else:
        start = values[:, known].mean(dim=1)[:, None, None].expand_as(values)
    result = torch.where(known, values, start)
    for _ in range(iterations):
        edged = F.pad(result[None], (1, 1, 1, 1), mode="replicate")[0]
        average = (
            edged[:, :-2, 1:-1] + edged[:, 2:, 1:-1] + edged[:, 1:-1, :-2] + edged[:, 1:-1, 2:]
        ) / 4
        result = torch.where(known, values, average)
    return result


def upscale_flow(
    flow: torch.Tensor, valid: torch.Tensor | None, factor: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flow of low-res frames -> the grid ``factor`` times finer (e.g. an 8x upscale's output):
    bilinear in position, multiplied by ``factor``; validity by nearest neighbour."""
    if factor == 1:
        return flow, valid
    fine = F.interpolate(flow, scale_factor=factor, mode="bilinear", align_corners=False) * factor
    if valid is None:
        return fine, None
    return fine, F.interpolate(valid.float(), scale_factor=factor, mode="nearest") > 0.5


def resize_flow(
    flow: torch.Tensor, valid: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pixel flow ``(B, 2, h, w)`` -> the same motion on a ``size = (width, height)`` grid:
    bilinear in position, dx scaled by width / w and dy by height / h; validity by nearest."""
    width, height = size
    if (flow.shape[-1], flow.shape[-2]) == (width, height):
        return flow, valid
    scale = torch.tensor(
        [width / flow.shape[-1], height / flow.shape[-2]], dtype=flow.dtype, device=flow.device
    ).view(1, 2, 1, 1)
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    if valid is None:
        return resized * scale, None
    kept = F.interpolate(valid.float(), size=(height, width), mode="nearest") > 0.5
    return resized * scale, kept
