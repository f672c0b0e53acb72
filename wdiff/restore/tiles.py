"""How a restore tiles its frames (``--tile``): a fixed size, or ``--tile auto``'s size, which
starts at the model's ``max_tile`` and halves when a frame runs out of memory
(``diffusion.tiling.auto_tile``). Sizes are in working-grid cells; 0 = whole frames."""

from __future__ import annotations

import torch

from wdiff.diffusion.tiling import TilesExhausted, auto_tile, tile_in_use, tile_overlap, tiled
from wdiff.errors import WdiffError


class TilePolicy:
    """The tile size in use for frames of ``grid`` = (h, w) cells of ``scale`` pixels.

    ``setting`` is ``--tile``: "auto" or output pixels per side (0 = whole frames);
    ``overlap_pixels`` is ``--tile-overlap``.
    """

    def __init__(self, setting: int | str, overlap_pixels: int, denoiser, grid: tuple[int, int]):
        self.auto = setting == "auto"
        self.scale = denoiser.scale
        self.grid = grid
        self.overlap = max(2, overlap_pixels // self.scale)
        if self.auto:
            max_tile = getattr(denoiser, "max_tile", None)
            self.tile = auto_tile(grid, max_tile, self.overlap, self.scale)
        else:
            self.tile = setting // self.scale
            if setting and self.tile < 4:
                raise WdiffError(
                    f"--tile {setting}: this model needs tiles of at least {4 * self.scale} px"
                )

    def wrap(self, denoiser):
        """``denoiser`` on tiles of the current size (itself when whole frames fit)."""
        return tiled(denoiser, self.tile, self.overlap, self.grid)

    def lower(self, message: str) -> None:
        """After the current size ran out of memory: the next smaller one (``--tile auto``).
        Raises ``TilesExhausted`` with ``message`` below the smallest."""
        try:
            self.tile = auto_tile(self.grid, None, self.overlap, self.scale, self.tile)
        except TilesExhausted as exhausted:
            raise TilesExhausted(message, exhausted.pixels) from None

    def pixels(self, tile: int | None = None) -> int:
        """Output pixels per tile side of ``tile`` (default: the current size); 0 when whole
        frames are sampled."""
        return tile_in_use(self.tile if tile is None else tile, self.grid) * self.scale

    def overlap_pixels(self) -> int:
        """The overlap the current tiles share, in output pixels."""
        return tile_overlap(self.tile, self.overlap) * self.scale

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"tile": torch.tensor(self.tile)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """An interrupted ``--tile auto`` run continues at the size it had settled on."""
        if self.auto and "tile" in tensors:
            self.tile = int(tensors["tile"])
