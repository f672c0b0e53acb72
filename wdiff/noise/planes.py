"""Where GP noise positions live on the plane: videos of a batch side by side ``BATCH_STRIDE``
cells apart, and fresh noise for born cells (disoccluded or entering) in copies of the plane
``FRESH_STRIDE`` cells down (plane 0 is the screen's own). Noise at positions more than a few
cells apart is independent, so a position in an unused part of a plane is fresh noise."""

from __future__ import annotations

import torch

FRESH_STRIDE = float(1 << 20)  # cells between planes of fresh positions (independent noise)
BATCH_STRIDE = float(1 << 30)  # cells between the videos of a batch
_CLEARANCE = 3  # cells: beyond this the kernel is below 1e-3, the noise independent


def plane_of(y: torch.Tensor) -> torch.Tensor:
    """The plane (0, 1, ...) of y coordinates ``y``, as float64."""
    return torch.floor(y / FRESH_STRIDE + 0.5)


def _keys(cells: torch.Tensor) -> torch.Tensor:
    """Integer cells (..., 2) -> int64 keys (x may span the batch strides, y stays in a plane)."""
    cells = cells.long()  # in float64 the sum would round away y (2^59 has a 64-wide ulp)
    return (cells[..., 0] + (1 << 35)) * (1 << 24) + (cells[..., 1] + (1 << 23))


def rehome(positions: torch.Tensor, births: torch.Tensor) -> torch.Tensor:
    """Give born cells (``births`` (B, h, w) True) of ``positions`` (B, 2, h, w) float64 fresh
    noise: their continued positions, moved to the first plane where they clash with no cell
    on screen. A clash is a cell within _CLEARANCE in the plane that is not where the same
    offset puts it on screen: such a pair would repeat noise between unrelated places, while a
    consistent neighbour (a pan writing new ground beside the last frame's births) is just the
    field going on. Planes are reused, so their tiles are evaluated once for many frames."""
    cells = positions.permute(0, 2, 3, 1)
    # only cells born before can be in the planes births go to
    earlier = ~births & (plane_of(positions[:, 1]) > 0)
    born, born_screen = cells[births], _screen_of(births)
    kept, kept_screen = cells[earlier], _screen_of(earlier)
    kept_plane = plane_of(kept[:, 1])
    kept_local = torch.stack([kept[:, 0], kept[:, 1] - kept_plane * FRESH_STRIDE], dim=-1)
    born_local = torch.stack([born[:, 0], born[:, 1] - plane_of(born[:, 1]) * FRESH_STRIDE], dim=-1)
    reach = torch.arange(-_CLEARANCE, _CLEARANCE + 1, device=positions.device, dtype=torch.float64)
    around = torch.stack(torch.meshgrid(reach, reach, indexing="xy"), dim=-1).reshape(-1, 2)
    near = _keys(torch.round(born_local)[:, None, :] + around[None])  # (n, 49)
    chosen = torch.zeros(born.shape[0], dtype=torch.float64, device=positions.device)  # 0: none yet
    candidate = 1
    while (chosen == 0).any():
        open_ = (chosen == 0).nonzero().squeeze(1)
        in_candidate = (kept_plane == candidate).nonzero().squeeze(1)
        clash = torch.zeros(open_.shape[0], dtype=torch.bool, device=positions.device)
        if in_candidate.numel():
            taken, order = torch.sort(_keys(torch.round(kept_local[in_candidate])))
            index = torch.searchsorted(taken, near[open_]).clamp_max(taken.numel() - 1)
            found = taken[index] == near[open_]
            occupant = in_candidate[order[index]]  # (m, 49) indices into kept
            plane = kept_local[occupant] - born_local[open_, None, :]
            view = kept_screen[occupant] - born_screen[open_, None, :]
            clash = (found & ((plane - view).abs().amax(dim=-1) > 1.5)).any(dim=1)
        chosen[open_[~clash]] = candidate
        candidate += 1
    born_local[:, 1] += chosen * FRESH_STRIDE
    cells = cells.clone()
    cells[births] = born_local
    return cells.permute(0, 3, 1, 2)


def _screen_of(where: torch.Tensor) -> torch.Tensor:
    """Screen positions (n, 2) (x + the batch stride, y), float64, of the True cells of
    ``where`` (B, h, w), in the order boolean indexing takes them."""
    item, y, x = where.nonzero().to(torch.float64).unbind(1)
    return torch.stack([x + BATCH_STRIDE * item, y], dim=-1)
