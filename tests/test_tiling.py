"""Tiled denoising: identical to whole-frame denoising where the model is local, gradients flow
through it (full guidance), and the CLI's --tile runs end to end."""

import pytest
import torch
from denoisers import ConvDenoiser
from media import make_clip

from wdiff.cli import main
from wdiff.diffusion.tiling import TiledDenoiser, tile_starts
from wdiff.video import open_video


def test_tile_starts_cover_with_overlap():
    assert tile_starts(10, 16, 4) == [0]
    starts = tile_starts(100, 32, 8)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    assert all(b - a <= 32 - 8 for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("size", [(40, 52), (33, 70)])
def test_tiled_equals_whole_frame_for_a_local_model(size):
    # a 3x3 conv sees one cell around; the weights are zero on the 2 cells next to inner edges
    denoiser = ConvDenoiser(channels=3, seed=1)
    tiled = TiledDenoiser(denoiser, tile=16, overlap=8)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 2
    cond = torch.zeros(1, 3, *size)
    whole = denoiser(x, torch.tensor(2.0), cond)
    assert torch.allclose(tiled(x, torch.tensor(2.0), cond), whole, atol=1e-6)


def test_gradients_flow_through_tiles():
    denoiser = ConvDenoiser(channels=3, seed=2)
    tiled = TiledDenoiser(denoiser, tile=16, overlap=8)
    x = torch.randn(1, 3, 30, 30).requires_grad_(True)
    (grad_tiled,) = torch.autograd.grad(tiled(x, torch.tensor(1.0), None).square().sum(), x)
    y = x.detach().requires_grad_(True)
    (grad_whole,) = torch.autograd.grad(denoiser(y, torch.tensor(1.0), None).square().sum(), y)
    assert torch.allclose(grad_tiled, grad_whole, atol=1e-5)


def test_full_guidance_through_tiles_keeps_one_tiles_activations():
    """With a graph (full guidance), each tile is checkpointed: what the forward pass saves for
    the backward pass is the tiles' inputs, not every tile's activations. Bytes saved, counted
    with autograd's saved-tensor hooks, are well under a whole frame's."""
    from denoisers import DeepConvDenoiser

    denoiser = DeepConvDenoiser(channels=3, width=32, depth=4, seed=3)

    def saved_bytes(model) -> int:
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        x = torch.randn(1, 3, 96, 96).requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = model(x, torch.tensor(1.0), None)
        torch.autograd.grad(out.square().sum(), x)
        return total

    whole = saved_bytes(denoiser)
    tiled = saved_bytes(TiledDenoiser(denoiser, tile=32, overlap=8))
    assert tiled < whole / 4, (tiled, whole)


def test_upscale_with_tiles(tmp_path):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(32, 24))
    out = tmp_path / "up.mp4"
    args = ["upscale", str(clip), "--scale", "2", "--steps", "2", "--tile", "32"]
    assert main([*args, "--tile-overlap", "8", "-o", str(out), "--quiet"]) == 0
    info = open_video(out).info
    assert (info.width, info.height, info.frame_count) == (64, 48, 3)
    assert main([*args, "--tile-overlap", "20", "-o", str(tmp_path / "x.mp4")]) == 2
