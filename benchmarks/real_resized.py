"""Real camera noise in photos that were resized and saved again (a web export, a shared copy).

    python benchmarks/real_resized.py [--data ../shared/data/dev-real/PolyU-Canon5D2] [--factors 1 0.5]
                                      [--formats png jpeg90]

Each PolyU pair (``*_real`` noisy, ``*_mean`` clean) is resized by every factor (OpenCV INTER_AREA, both
images alike; 1 = as it is) and the noisy one saved again as 8-bit PNG or as JPEG of the given quality
(OpenCV: 4:2:0). Downscaling averages the camera noise down and makes it less correlated, so it sits
between the camera-noise path and the white-noise path. Per setting: the noisy photo, *Auto* (what the app
does), the camera-noise path forced (*Noise type ▸ Camera noise*), how many photos *Auto* sent down the
camera path, and how many of the resized clean references *Auto* returns unchanged (≥ 45 dB against
themselves), the cost side of any rule that would take more photos for camera noise. One thread; prints
a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import torch

from desktop_denoiser.bench.real import CLEAN_PSNR, find_pairs
from desktop_denoiser.core.camera_sim import jpeg, to_8bit
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser


def resize(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` (float HxWx3) resized by ``factor`` with pixel-area averaging (cubic when enlarging)."""
    if factor == 1:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def save_again(image: np.ndarray, fmt: str) -> np.ndarray:
    """``image`` as the file ``fmt`` ("png", or "jpegQ" for JPEG of quality Q) would hold it, decoded."""
    if fmt == "png":
        return to_8bit(image)
    if fmt.startswith("jpeg") and fmt[4:].isdigit():
        return jpeg(image, int(fmt[4:]))
    raise ValueError(f"format must be png or jpegQ (e.g. jpeg90), got {fmt!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/dev-real/PolyU-Canon5D2")
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--formats", nargs="+", default=["png", "jpeg90"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    pairs = find_pairs(Path(args.data))
    if not pairs:
        raise SystemExit(f"no *_real / *_mean pairs in {args.data}")
    d = Denoiser()
    auto, camera = DenoiseOptions(), replace(DenoiseOptions(), noise_model="real")
    print(f"{len(pairs)} pairs of `{args.data}`, resized (INTER_AREA) and saved again\n")
    print("| factor | saved as | noisy (dB) | Auto (dB) | camera path forced (dB) | Auto took the camera path "
          "| clean references unchanged (≥ 45 dB) |")
    print("| ---: | :--- | ---: | ---: | ---: | ---: | ---: |")
    photos = [(read_image(n).pixels.astype(np.float32), read_image(c).pixels.astype(np.float32)) for n, c in pairs]
    for factor in args.factors:
        refs = [resize(clean, factor) for _, clean in photos]
        unchanged = []  # per reference, whatever the noisy photo is saved as: run once per factor
        for ref in refs:
            ref8 = to_8bit(ref)  # the clean reference as a user's 8-bit file
            unchanged.append(psnr(run_to_end(d.run(ref8, auto)).pixels, ref8) >= CLEAN_PSNR)
        for fmt in args.formats:
            rows = []
            for (noisy, _), ref, kept in zip(photos, refs, unchanged):
                y = save_again(resize(noisy, factor), fmt)
                plan = d.plan(y, auto)
                out = run_to_end(d.run(y, auto, plan)).pixels
                forced = run_to_end(d.run(y, camera)).pixels
                rows.append((psnr(y, ref), psnr(out, ref), psnr(forced, ref), plan.real, kept))
            r = np.array(rows, dtype=np.float64)
            n = len(r)
            print(f"| {factor:g} | {fmt} | {r[:, 0].mean():.2f} | {r[:, 1].mean():.2f} | {r[:, 2].mean():.2f} | "
                  f"{int(r[:, 3].sum())} of {n} | {int(r[:, 4].sum())} of {n} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
