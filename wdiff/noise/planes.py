"""Where GP noise positions live on the plane: videos of a batch side by side ``BATCH_STRIDE``
cells apart, and fresh noise for born cells (disoccluded or entering) in copies of the plane
``FRESH_STRIDE`` cells down (plane 0 is the screen's own). Noise at positions more than a few
cells apart is independent, so a position in an unused part of a plane is fresh noise."""

from __future__ import annotations

import torch

FRESH_STRIDE = float(1 << 20)  # cells between planes of fresh positions (independent noise)
BATCH_STRIDE = float(1 << 30)  # cells between the videos of a batch
_CLEARANCE = 3  # cells: beyond this the kernel is below 1e-3, the noise independent
# fresh planes at most (#18): scattered survivors of many cohorts otherwise fill a new plane a
# frame, each read through its own tiles (at 1920x1080, 16 planes and 12,800 tiles a frame by
# frame 16); past the cap the emptiest plane is cleared instead
MAX_PLANES = 6


def plane_of(y: torch.Tensor) -> torch.Tensor:
    """The plane (0, 1, ...) of y coordinates ``y``, as float64."""
    return torch.floor(y / FRESH_STRIDE + 0.5)


def _keys(cells: torch.Tensor) -> torch.Tensor:
    """Integer cells (..., 2) -> int64 keys (x may span the batch strides, y stays in a plane)."""
    cells = cells.long()  # in float64 the sum would round away y (2^59 has a 64-wide ulp)
    return (cells[..., 0] + (1 << 35)) * (1 << 24) + (cells[..., 1] + (1 << 23))


def rehome(
    positions: torch.Tensor, births: torch.Tensor, max_planes: int = MAX_PLANES
) -> torch.Tensor:
    """Give born cells (``births`` (B, h, w) True) of ``positions`` (B, 2, h, w) float64 fresh
    noise: their continued positions, moved to the first plane where they clash with no cell
    on screen. A clash is a cell within _CLEARANCE in the plane that is not where the same
    offset puts it on screen: such a pair would repeat noise between unrelated places, while a
    consistent neighbour (a pan writing new ground beside the last frame's births) is just the
    field going on. Planes are reused, so their tiles are evaluated once for many frames.

    Born cells that clash in every one of planes 1 to ``max_planes`` go to the plane where
    making room for them moves the fewest cells: those in their way are born again with them
    (and any that would then clash, in turn), and everything placed there this frame takes its
    own screen position in that plane, so nothing clashes. The tiles a frame reads then stay
    bounded (#18)."""
    cells = positions.permute(0, 2, 3, 1)
    # only cells born before can be in the planes births go to
    earlier = ~births & (plane_of(positions[:, 1]) > 0)
    born, born_screen = cells[births], _screen_of(births)
    kept, kept_screen = cells[earlier], _screen_of(earlier)
    kept_plane = plane_of(kept[:, 1])
    kept_local = torch.stack([kept[:, 0], kept[:, 1] - kept_plane * FRESH_STRIDE], dim=-1)
    born_local = torch.stack([born[:, 0], born[:, 1] - plane_of(born[:, 1]) * FRESH_STRIDE], dim=-1)
    others = _Occupants(kept_local, kept_screen, kept_plane)
    chosen = torch.zeros(born.shape[0], dtype=torch.float64, device=positions.device)  # 0: none yet
    for candidate in range(1, max_planes + 1):
        open_ = (chosen == 0).nonzero().squeeze(1)
        if open_.numel() == 0:
            break
        clash, _ = others.clashes(born_local[open_], born_screen[open_], candidate)
        chosen[open_[~clash]] = candidate
    cells = cells.clone()
    placed = births.clone()
    if (chosen == 0).any():
        # everything that goes to the plane takes its screen position there: these never clash
        # together; the plane is the one where that moves the fewest cells on screen
        leaving = {}
        for plane in range(1, max_planes + 1):
            own = (chosen == 0) | (chosen == plane)
            leaving[plane] = others.clear(born_screen[own], plane)
        plane = min(leaving, key=lambda k: int(leaving[k].sum()))
        evicted = leaving[plane]
        chosen[chosen == 0] = plane
        own = chosen == plane
        placed[births] = ~own
        cleared = births.clone()
        cleared[births] = own
        cleared[earlier] = evicted
        screen = _screen_of(cleared)
        cells[cleared] = torch.stack([screen[:, 0], screen[:, 1] + plane * FRESH_STRIDE], dim=-1)
        born_local, chosen = born_local[~own], chosen[~own]
    born_local[:, 1] += chosen * FRESH_STRIDE
    cells[placed] = born_local
    return cells.permute(0, 3, 1, 2)


class _Occupants:
    """The cells on screen in fresh planes (their positions there, on screen, and their plane),
    searched by position."""

    def __init__(self, local: torch.Tensor, screen: torch.Tensor, plane: torch.Tensor):
        self.local, self.screen, self.plane = local, screen, plane
        reach = torch.arange(-_CLEARANCE, _CLEARANCE + 1, device=plane.device, dtype=torch.float64)
        square = torch.meshgrid(reach, reach, indexing="xy")
        self.around = torch.stack(square, dim=-1).reshape(-1, 2)

    def clashes(
        self,
        local: torch.Tensor,
        screen: torch.Tensor,
        plane: int,
        left: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cells at ``local`` (n, 2) in ``plane``, ``screen`` (n, 2) on screen -> which of them
        clash (n,) bool, and the occupants they clash with (indices, unique); occupants marked
        in ``left`` (bool over all) do not count."""
        members = self.plane == plane
        members = (members if left is None else members & ~left).nonzero().squeeze(1)
        clash = torch.zeros(local.shape[0], dtype=torch.bool, device=local.device)
        if members.numel() == 0 or local.shape[0] == 0:
            return clash, members[:0]
        near = _keys(torch.round(local)[:, None, :] + self.around[None])  # (n, 49)
        taken, order = torch.sort(_keys(torch.round(self.local[members])))
        index = torch.searchsorted(taken, near).clamp_max(taken.numel() - 1)
        found = taken[index] == near
        occupant = members[order[index]]  # (n, 49)
        apart = self.local[occupant] - local[:, None, :]
        view = self.screen[occupant] - screen[:, None, :]
        hit = found & ((apart - view).abs().amax(dim=-1) > 1.5)
        return hit.any(dim=1), torch.unique(occupant[hit])

    def clear(self, screen: torch.Tensor, plane: int) -> torch.Tensor:
        """The occupants that must leave ``plane`` to make room for cells at their screen
        positions ``screen`` (n, 2): those in their way, which take their own screen positions
        too, and so on until none is in the way (bool over all occupants)."""
        left = torch.zeros(self.plane.shape[0], dtype=torch.bool, device=self.plane.device)
        while screen.shape[0]:
            _, hit = self.clashes(screen, screen, plane, left)
            left[hit] = True
            screen = self.screen[hit]
        return left


def _screen_of(where: torch.Tensor) -> torch.Tensor:
    """Screen positions (n, 2) (x + the batch stride, y), float64, of the True cells of
    ``where`` (B, h, w), in the order boolean indexing takes them."""
    item, y, x = where.nonzero().to(torch.float64).unbind(1)
    return torch.stack([x + BATCH_STRIDE * item, y], dim=-1)
