"""Deepening a built-in network without changing what it computes (Net2DeeperNet, Chen et al.
2016): a trained network gets more ResNet layers per block, each new one starting as the
identity, so that training goes on from the function it had rather than from scratch.

A diffusers ``UNet2DModel`` with ``L`` layers per block keeps the output of every down layer as
a skip, and each up block takes ``L + 1`` of them, last first. One more layer per block adds:

- in each down block, a last layer whose output convolution is zero, so it hands on its input
  (the skip it adds equals the one before it);
- in each up block, a second layer whose shortcut passes the running features and drops its
  skip (the duplicate), and whose output convolution is zero. The other up layers keep their
  weights and meet the skips they met before.
"""

from __future__ import annotations

import re
from dataclasses import replace

import torch

from wdiff.errors import WdiffError


def _zero_output(layer: torch.nn.Module) -> None:
    """A ResNet layer's residual branch made to add nothing: ``out = shortcut(x)``."""
    torch.nn.init.zeros_(layer.conv2.weight)
    torch.nn.init.zeros_(layer.conv2.bias)


def _pass_features(layer: torch.nn.Module, features: int) -> None:
    """An up layer (input: ``features`` running channels, then its skip) made into the
    identity on the running channels: its 1x1 shortcut keeps them and drops the skip."""
    shortcut = layer.conv_shortcut
    with torch.no_grad():
        shortcut.weight.zero_()
        shortcut.bias.zero_()
        shortcut.weight[:, :features, 0, 0] = torch.eye(features)
    _zero_output(layer)


def deepen(net, layers: int):
    """A copy of ``net`` (a ``BuiltinNet`` with no first-level network of its own) with
    ``layers`` ResNet layers per block instead of its ``config.layers_per_block`` (``net``
    itself if it has that many); the same outputs. The new layers' other weights are their
    fresh random initialisation."""
    from wdiff.models.builtin import BuiltinNet

    have = net.config.layers_per_block
    if net.first is not None:
        raise WdiffError("deepen a first-level network itself, not the model that holds it")
    if layers < have:
        raise WdiffError(
            f"cannot deepen a network of {have} layers per block to {layers}; give {have} or more"
        )
    grown = net
    for depth in range(have + 1, layers + 1):
        grown = _one_more_layer(grown, BuiltinNet(replace(grown.config, layers_per_block=depth)))
    return grown


def _one_more_layer(net, grown):
    """``grown`` (one layer per block more than ``net``, freshly made) given ``net``'s weights
    and identity layers."""
    old, new = net.unet, grown.unet
    # everything but the down and up blocks' layers has the same names and shapes
    layer = re.compile(r"^(down|up)_blocks\.\d+\.resnets\.")
    kept = {name: value for name, value in old.state_dict().items() if not layer.match(name)}
    result = new.load_state_dict(kept, strict=False)
    if result.unexpected_keys or not all(layer.match(name) for name in result.missing_keys):
        raise WdiffError(  # a diffusers UNet2DModel laid out otherwise than this code knows
            "cannot deepen this network: its layout differs from a UNet2DModel's "
            f"({', '.join(result.unexpected_keys or result.missing_keys)[:200]})"
        )
    for old_block, new_block in zip(old.down_blocks, new.down_blocks, strict=True):
        for source, target in zip(old_block.resnets, new_block.resnets, strict=False):
            target.load_state_dict(source.state_dict())
        _zero_output(new_block.resnets[-1])
    for old_block, new_block in zip(old.up_blocks, new.up_blocks, strict=True):
        # new layer 0 meets the duplicate skip (the same value as old layer 0's), new layer 1
        # meets the original one again, new layers 2.. meet what old layers 1.. met
        new_block.resnets[0].load_state_dict(old_block.resnets[0].state_dict())
        _pass_features(new_block.resnets[1], new_block.resnets[0].conv2.out_channels)
        for source, target in zip(old_block.resnets[1:], new_block.resnets[2:], strict=True):
            target.load_state_dict(source.state_dict())
    return grown
