"""Tiled evaluation of the epsilon-network with context margins and smooth blending.

Each tile is evaluated with ``margin`` extra pixels of real image around it (cropped off afterwards, so
the network never sees an artificial border inside the image), neighbouring tiles overlap by ``overlap``
pixels and are blended with raised-cosine weights. Tile positions are aligned to the U-Net's
down-sampling factor so the pixel-unshuffle grid is the same as in an untiled run. The U-Net has no
normalisation layers, so the tiled result matches the untiled one up to a tiny error (tested). Tiles
are moved to the compute device one at a time: the full image can stay on the CPU, which bounds GPU
(and CPU) memory for 12-50 megapixel photos.

``on_tile(done, total)`` is called after each tile (once for an untiled evaluation): a progress hook for
the long single steps of big photos. It may raise to abandon the step (the GUI's cancel between tiles);
the exception leaves the reverse-process generator like any other.
"""

from __future__ import annotations

from typing import Callable

import torch

from .sampler import EpsFn

ALIGN = 16
# The smallest tile: tiles are placed on the ALIGN grid, so a smaller one would leave gaps between tiles.
MIN_TILE_SIZE = ALIGN


def _layout(length: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """(tile length, start positions) covering ``length`` with the fewest tiles of at most ``tile``
    pixels, made as even as possible so little work is wasted on overlap."""
    if length <= tile:
        return length, [0]
    n = -(-(length - overlap) // max(1, tile - overlap))
    size = -(-(length + (n - 1) * overlap) // n)
    size = min(tile, -(-size // ALIGN) * ALIGN)
    stride = max(ALIGN, (size - overlap) // ALIGN * ALIGN)
    starts = list(range(0, length - size, stride))
    starts.append(length - size)
    return size, starts


def _weights(n: int, lead: int, trail: int, device) -> torch.Tensor:
    """1-D weight: raised-cosine ramps of ``lead``/``trail`` pixels at the ends, 1 elsewhere."""
    w = torch.ones(n, dtype=torch.float32, device=device)
    for length, sl in ((lead, slice(0, lead)), (trail, slice(n - trail, n))):
        if length > 0:
            r = torch.arange(length, dtype=torch.float32, device=device)
            ramp = 0.5 - 0.5 * torch.cos(torch.pi * (r + 0.5) / length)
            w[sl] = ramp if sl.start == 0 else ramp.flip(0)
    return w


TileCallback = Callable[[int, int], None]


def tiled_eps(model: Callable, device: torch.device | str, tile: int | None, overlap: int = 32,
              margin: int = 48, on_tile: TileCallback | None = None) -> EpsFn:
    """Wrap ``model(x, t)`` so that inputs larger than ``tile`` are evaluated piecewise on ``device``.

    The returned function accepts x on any device and returns eps on x's device and dtype."""
    if tile is not None and tile < MIN_TILE_SIZE:
        raise ValueError(f"tile must be at least {MIN_TILE_SIZE} pixels, got {tile}")
    device = torch.device(device)
    margin = -(-margin // ALIGN) * ALIGN

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        t_dev = t.to(device)
        if tile is None or (H <= tile and W <= tile):
            eps = model(x.to(device, torch.float32), t_dev).to(x.device, x.dtype)
            if on_tile is not None:
                on_tile(1, 1)
            return eps
        ov = max(0, min(overlap, tile // 4))
        out = torch.zeros_like(x, dtype=torch.float32)
        weight = torch.zeros((1, 1, H, W), dtype=torch.float32, device=x.device)
        th, ys = _layout(H, tile, ov)
        tw, xs = _layout(W, tile, ov)
        n_tiles, done = len(ys) * len(xs), 0
        # each overlap is a crossfade: the earlier tile ramps down as the next ramps up (the two raised
        # cosines sum to 1; with the earlier tile at weight 1 throughout, the blend jumped at the overlap's end)
        for iy, y0 in enumerate(ys):
            lead_y = (ys[iy - 1] + th - y0) if iy > 0 else 0
            trail_y = (y0 + th - ys[iy + 1]) if iy + 1 < len(ys) else 0
            wy = _weights(th, lead_y, trail_y, x.device)
            for ix, x0 in enumerate(xs):
                lead_x = (xs[ix - 1] + tw - x0) if ix > 0 else 0
                trail_x = (x0 + tw - xs[ix + 1]) if ix + 1 < len(xs) else 0
                wx = _weights(tw, lead_x, trail_x, x.device)
                ya, yb = max(0, y0 - margin), min(H, y0 + th + margin)
                xa, xb = max(0, x0 - margin), min(W, x0 + tw + margin)
                # keep the unshuffle grid aligned with the untiled run
                ya, xa = ya // ALIGN * ALIGN, xa // ALIGN * ALIGN
                patch = x[:, :, ya:yb, xa:xb].to(device, torch.float32)
                eps = model(patch, t_dev).to(x.device, torch.float32)
                eps = eps[:, :, y0 - ya:y0 - ya + th, x0 - xa:x0 - xa + tw]
                w2 = wy[:, None] * wx[None, :]
                out[:, :, y0:y0 + th, x0:x0 + tw] += eps * w2
                weight[:, :, y0:y0 + th, x0:x0 + tw] += w2
                done += 1
                if on_tile is not None:
                    on_tile(done, n_tiles)
        return out.div_(weight).to(x.dtype)

    return eps_fn
