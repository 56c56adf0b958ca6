"""Regenerate ``sample_noisy.png`` (and ``sample_clean.png`` for reference, not shipped).

A procedurally painted landscape (no third-party photo, so no licence question): sky gradient with a
glowing sun, layered mountain ridges with aerial perspective, a lake with a soft reflection, pines,
a small cabin and a hot-air balloon; then Gaussian noise with sigma = 25 (8-bit units), saved as an
8-bit PNG.  Run: ``python resources/make_sample.py [--clean]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 384, 256
SIGMA = 25.0
HERE = Path(__file__).resolve().parent


def _lerp(a, b, t):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a + (b - a) * np.asarray(t, np.float32)[..., None]


def _ridge(x: np.ndarray, base: float, amp: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.full_like(x, base, dtype=np.float32)
    for octave in range(5):
        f = 2 ** octave / W * (1.5 + rng.random())
        y += amp / (1.8 ** octave) * np.sin(2 * np.pi * f * x + rng.random() * 6.28)
    return y


def paint() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    horizon = 150.0
    # sky: deep blue at the top to warm peach at the horizon
    t = np.clip(yy / horizon, 0, 1) ** 1.3
    img = _lerp((48, 86, 156), (250, 196, 150), t)
    # sun + glow
    sx, sy = 270.0, 112.0
    d = np.hypot(xx - sx, yy - sy)
    img += (np.exp(-(d / 60.0) ** 2) * 70)[..., None] * np.array([1.0, 0.75, 0.45], np.float32)
    img = np.where((d < 16)[..., None], _lerp((255, 244, 214), (255, 226, 170), np.clip(d / 16, 0, 1)), img)
    # soft clouds
    rng = np.random.default_rng(3)
    for _ in range(7):
        cx, cy, rx, ry = rng.uniform(0, W), rng.uniform(20, 90), rng.uniform(30, 70), rng.uniform(5, 10)
        c = np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
        img = img * (1 - 0.55 * c[..., None]) + 0.55 * c[..., None] * np.array([252, 236, 228], np.float32)

    x = np.arange(W, dtype=np.float32)
    ridges = [  # (base height, amplitude, seed, colour far->near)
        (112, 14, 1, (150, 140, 178)),
        (126, 16, 2, (110, 110, 150)),
        (140, 12, 5, (72, 88, 110)),
    ]
    for base, amp, seed, col in ridges:
        top = _ridge(x, base, amp, seed)
        mask = yy >= top[None, :]
        shade = np.clip((yy - top[None, :]) / 40.0, 0, 1)
        rock = _lerp(col, np.array(col) * 0.7, shade)
        # sun-facing slopes lighter
        slope = np.gradient(top)[None, :].repeat(H, 0)
        rock = rock * (1 + 0.04 * np.clip(-slope, -3, 3))[..., None]
        img = np.where(mask[..., None], rock, img)

    # meadow and lake
    ground_top = horizon
    meadow = _lerp((86, 128, 64), (44, 82, 40), np.clip((yy - ground_top) / 106, 0, 1))
    img = np.where((yy >= ground_top)[..., None], meadow, img)
    lake = (yy >= 160) & (((xx - 200) / 150) ** 2 + ((yy - 196) / 30) ** 2 < 1)
    refl_y = np.clip(2 * 158 - yy, 0, H - 1).astype(int)
    reflection = img[refl_y, xx.astype(int)] * 0.75 + np.array([20, 40, 70], np.float32) * 0.25
    ripple = 1 + 0.025 * np.sin(yy * 0.9 + np.sin(xx * 0.04) * 2)
    img = np.where(lake[..., None], reflection * ripple[..., None], img)

    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    dr = ImageDraw.Draw(im)
    # pines
    trng = np.random.default_rng(11)
    for px in list(range(6, 110, 13)) + list(range(330, 384, 11)):
        base_y = int(trng.uniform(168, 200))
        h = int(trng.uniform(38, 62))
        w = h * 0.36
        dr.rectangle([px - 1, base_y - 6, px + 1, base_y], fill=(60, 40, 28))
        for k in range(4):
            y0 = base_y - 6 - k * h / 5
            dr.polygon([(px - w * (1 - k / 5), y0), (px + w * (1 - k / 5), y0), (px, y0 - h / 2.4)],
                       fill=(24 + 6 * k, 64 + 10 * k, 40 + 4 * k))
    # cabin
    cx, cy = 300, 186
    dr.rectangle([cx, cy, cx + 34, cy + 22], fill=(150, 84, 52))
    dr.polygon([(cx - 5, cy), (cx + 39, cy), (cx + 17, cy - 16)], fill=(92, 44, 40))
    dr.rectangle([cx + 6, cy + 6, cx + 13, cy + 13], fill=(255, 214, 120))
    dr.rectangle([cx + 21, cy + 9, cx + 28, cy + 22], fill=(84, 52, 34))
    # hot-air balloon
    bx, by = 96, 60
    gores = [(40, (214, 64, 58)), (30, (244, 186, 66)), (20, (214, 64, 58)), (10, (250, 236, 210)), (4, (60, 120, 190))]
    for half_w, colr in gores:
        dr.ellipse([bx - half_w / 2, by - 24, bx + half_w / 2, by + 24], fill=colr)
    dr.ellipse([bx - 20, by - 24, bx + 20, by + 24], outline=(150, 50, 45), width=1)
    dr.line([(bx - 9, by + 20), (bx - 4, by + 34)], fill=(60, 40, 30))
    dr.line([(bx + 9, by + 20), (bx + 4, by + 34)], fill=(60, 40, 30))
    dr.rectangle([bx - 5, by + 34, bx + 5, by + 41], fill=(120, 76, 44))
    im = im.filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(im, dtype=np.float32)


def main(argv: list[str]) -> int:
    clean = paint()
    rng = np.random.default_rng(2024)
    noisy = np.clip(np.round(clean + rng.normal(0, SIGMA, clean.shape)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(HERE / "sample_noisy.png", optimize=True)
    if "--clean" in argv:
        Image.fromarray(np.clip(np.round(clean), 0, 255).astype(np.uint8)).save(HERE / "sample_clean.png")
    print((HERE / "sample_noisy.png").stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
