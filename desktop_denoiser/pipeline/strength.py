"""How much of the noise a result removes: the denoised photo mixed with the original, separately for
brightness noise (grain) and colour noise (coloured speckles and blotches), as photo editors' luminance
and colour noise reduction do.

The noise a run removed, r = original − denoised, splits exactly into a grey part (its BT.601 luma Y in
all three channels) and a colour part (r − Y, whose luma is 0). ``strength`` keeps (1 − strength) of
the grey part, ``color_strength`` (1 − color_strength) of the colour part; equal, they are the plain mix
strength × denoised + (1 − strength) × original."""

from __future__ import annotations

import numpy as np

from ..core.metrics import LUMA_WEIGHTS

_ROWS = 256  # rows mixed at a time: the temporaries of a 24 MP photo stay at a few MB


def check_strength(strength: float, name: str = "strength") -> float:
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {strength}")
    return strength


def apply_strength(original: np.ndarray, denoised: np.ndarray, strength: float,
                   color_strength: float | None = None) -> np.ndarray:
    """The result at ``strength`` (share of the brightness noise removed) and ``color_strength`` (share of
    the colour noise removed; None: ``strength``), float32. Both 1 return ``denoised`` itself. A grey
    (HxWx1) photo has no colour noise: only ``strength`` applies."""
    strength = check_strength(strength)
    color = strength if color_strength is None else check_strength(color_strength, "color_strength")
    denoised = np.asarray(denoised)
    colour_photo = denoised.ndim == 3 and denoised.shape[2] == 3
    if not colour_photo or color == strength:
        if strength == 1.0:
            return denoised
        out = np.asarray(original, dtype=np.float32) * np.float32(1.0 - strength)
        out += np.float32(strength) * np.asarray(denoised, dtype=np.float32)
        return out
    # denoised + (1 − color) × r + (color − strength) × Y·(1, 1, 1): the grey part kept at 1 − strength,
    # the colour part r − Y·(1, 1, 1) at 1 − color
    out = np.array(denoised, dtype=np.float32, copy=True)
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    for y0 in range(0, out.shape[0], _ROWS):
        rows = slice(y0, y0 + _ROWS)
        removed = np.asarray(original[rows], dtype=np.float32) - out[rows]
        luma = removed @ weights
        out[rows] += np.float32(1.0 - color) * removed + np.float32(color - strength) * luma[..., None]
    return out
