"""Growing a trained ε-network into a wider and/or deeper one that computes the same function.

Why: the shipped network does about a third of FFDNet's arithmetic per pixel (``benchmarks/
arch_compute.py``), and more GPU time on the same network gains less each time (RESULTS, model card).
Training a bigger network from random weights would throw away ~10^5 steps; a grown one starts exactly
where the shipped one is and only has to learn what the new capacity adds.

:func:`grow_unet` copies every weight of ``old`` into a :class:`~desktop_denoiser.core.unet.UNet` of a
larger config such that, at the start, its output is the old output (to float rounding):

* **Wider** (more channels per level): each old output channel reads nothing from the new channels
  (those weights are zero); the new channels get the layer's usual random initialisation, so they carry
  signal from the first step, and the final convolution (zero columns for them) starts learning to use
  them at once. The FiLM rows are remapped (scale and shift halves), and so are the inputs of the first
  up block at each level, which read ``cat([h, skip])``.
* **Deeper** (more residual blocks per level): the extra blocks are appended at the end of each level
  with the U-Net's own initialisation, which is already the identity (their last convolution starts at
  zero and their skip is the identity).

The levels, the pixel-unshuffle factor, the time embedding and the input channels must stay the same,
and no level may get narrower. No Qt imports.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .unet import ResBlock, UNet, UNetConfig

__all__ = ["grow_unet", "check_growable"]


def check_growable(old: UNetConfig, new: UNetConfig) -> None:
    """Raise ValueError (saying why) unless ``old`` can be grown into ``new`` by :func:`grow_unet`."""
    for name in ("in_channels", "unshuffle", "time_embed_dim", "prediction"):
        if getattr(old, name) != getattr(new, name):
            raise ValueError(f"cannot grow: {name} differs ({getattr(old, name)} -> {getattr(new, name)})")
    if len(old.channel_mults) != len(new.channel_mults):
        raise ValueError(f"cannot grow: the number of levels differs ({len(old.channel_mults)} -> "
                         f"{len(new.channel_mults)})")
    was = [old.base_channels * m for m in old.channel_mults]
    now = [new.base_channels * m for m in new.channel_mults]
    if any(b < a for a, b in zip(was, now)):
        raise ValueError(f"cannot grow: a level gets narrower ({was} -> {now} channels)")
    if new.num_res_blocks < old.num_res_blocks:
        raise ValueError(f"cannot grow: fewer residual blocks ({old.num_res_blocks} -> {new.num_res_blocks})")
    # a residual block's skip is a 1x1 convolution where its input and output widths differ, else the
    # identity; growing must not turn one into the other (only the first block of a level can differ)
    for i in range(1, len(was)):
        if (was[i - 1] == was[i]) != (now[i - 1] == now[i]):
            raise ValueError(f"cannot grow: levels {i - 1} and {i} are {'equal' if was[i - 1] == was[i] else 'unequal'}"
                             f" in width before ({was}) but not after ({now})")


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d, in_map: torch.Tensor) -> None:
    """Old output channels (the first ones) get the old weights on their old inputs (``in_map``: the new
    index of each old input channel) and zero weights on the new inputs; new outputs keep their init."""
    o = src.weight.shape[0]
    dst.weight[:o].zero_()
    dst.weight[:o, in_map] = src.weight
    dst.bias[:o] = src.bias


def _copy_block(dst: ResBlock, src: ResBlock, in_map: torch.Tensor) -> None:
    o, n = src.conv2.weight.shape[0], dst.conv2.weight.shape[0]
    _copy_conv(dst.conv1, src.conv1, in_map)
    rows = torch.cat([torch.arange(o), n + torch.arange(o)])  # the FiLM's scale half, then its shift half
    dst.film.weight[rows] = src.film.weight
    dst.film.bias[rows] = src.film.bias
    _copy_conv(dst.conv2, src.conv2, torch.arange(o))
    if isinstance(src.skip, nn.Conv2d) != isinstance(dst.skip, nn.Conv2d):
        raise ValueError("cannot grow: a residual block's skip changes kind")  # ruled out by check_growable
    if isinstance(src.skip, nn.Conv2d):
        _copy_conv(dst.skip, src.skip, in_map)


@torch.no_grad()
def grow_unet(old: UNet, config: UNetConfig, *, seed: int = 0) -> UNet:
    """A new float32 CPU :class:`UNet` of ``config`` that computes ``old``'s function (see the module
    docstring); its new weights are drawn from a generator seeded with ``seed``."""
    check_growable(old.config, config)
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in old.parameters()):
        old = copy.deepcopy(old).to("cpu", torch.float32)  # Module.to would move the caller's model
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(seed)
        new = UNet(config, alphas_cumprod=getattr(old, "alphas_cumprod", None))
    prefix = torch.arange
    new.time_mlp.load_state_dict(old.time_mlp.state_dict())
    _copy_conv(new.inp, old.inp, prefix(old.inp.weight.shape[1]))
    for nb, ob in zip(new.down_blocks, old.down_blocks):
        for dst, src in zip(nb, ob):  # extra blocks (new ones at the end) are the identity already
            _copy_block(dst, src, prefix(src.conv1.weight.shape[1]))
    for dst, src in zip(new.downsamples, old.downsamples):
        _copy_conv(dst, src, prefix(src.weight.shape[1]))
    for dst, src in zip(new.mid, old.mid):
        _copy_block(dst, src, prefix(src.conv1.weight.shape[1]))
    for nb, ob in zip(new.up_blocks, old.up_blocks):
        # the first block of a level reads cat([h, skip]); both halves are as wide as the level
        a_old, a_new = ob[0].conv2.weight.shape[0], nb[0].conv2.weight.shape[0]
        first = torch.cat([prefix(a_old), a_new + prefix(ob[0].conv1.weight.shape[1] - a_old)])
        for j, (dst, src) in enumerate(zip(nb, ob)):
            _copy_block(dst, src, first if j == 0 else prefix(src.conv1.weight.shape[1]))
    for dst, src in zip(new.upsamples, old.upsamples):
        _copy_conv(dst, src, prefix(src.weight.shape[1]))
    _copy_conv(new.out, old.out, prefix(old.out.weight.shape[1]))
    return new
