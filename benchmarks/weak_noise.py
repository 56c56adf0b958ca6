"""Weak white noise (σ 2-10): blind against σ known, and what the white-over-texture rule changed.

    python benchmarks/weak_noise.py [--data DIR] [--sigmas 2 5 10] [--every N] [--grey]

Below σ ~10 the flattest blocks of a finely textured photo hold more texture than noise, and that texture
is spatially correlated like camera noise. Until stop 24 such photos took the camera-noise path at the
flat blocks' level (several times the true σ); now the white-noise estimate overrules that where it
explains the flat level (``core/noise_analysis.py: white_over_texture``). Each photo gets seeded 8-bit clipped
Gaussian noise and is denoised blind (the app's default), blind with that rule switched off (the app
before), and with σ known. Peers are not run here (the AWGN table has them at σ 15-50). One thread;
prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser, grey_photo, rule_set
from desktop_denoiser.core import noise_analysis
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def load(path: Path, grey: bool) -> np.ndarray:
    return grey_photo(path) if grey else read_image(path).pixels[..., :3].astype(np.float32)


def blind(d, noisy: np.ndarray, rule: bool):
    """The app's blind run, with the white-over-texture rule on (now) or off (before)."""
    level = noise_analysis.WHITE_MIN_SIGMA if rule else float("inf")
    with rule_set(noise_analysis, "WHITE_MIN_SIGMA", level):
        analysis = noise_analysis.analyse_noise(noisy)  # (Denoiser.estimate would reuse the last array's analysis)
    out = run_to_end(d.run(noisy, DenoiseOptions(), d.plan(noisy, DenoiseOptions(), analysis=analysis)))
    return out, analysis.correlated


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/dev/CBSD68")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[2, 5, 10])
    ap.add_argument("--every", type=int, default=1, help="every Nth photo of the folder")
    ap.add_argument("--grey", action="store_true", help="the photos converted to 8-bit grey (BT.601 luma)")
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = app_denoiser(args.standard)
    paths = list_images(Path(args.data))[:: args.every]
    kind = "grey" if args.grey else "colour"
    print(f"{len(paths)} {kind} photos of `{args.data}`, 8-bit clipped Gaussian noise, PSNR in dB:\n")
    print("| σ | taken for camera noise (before → now) | noisy | blind, before | blind, now | σ known "
          "| now − before | now − known | worst photo, before − known |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for sigma in args.sigmas:
        rows = []
        for i, path in enumerate(paths):
            clean = load(path, args.grey)
            noisy = add_gaussian_noise_8bit(clean, sigma, seed=1000 * i + int(sigma))  # any shape, grey too
            before, cam_before = blind(d, noisy, rule=False)
            now, cam_now = blind(d, noisy, rule=True)
            known = run_to_end(d.run(noisy, DenoiseOptions(sigma=sigma)))
            rows.append((cam_before, cam_now, psnr(noisy, clean), psnr(before.pixels, clean), psnr(now.pixels, clean),
                         psnr(known.pixels, clean)))
        r = np.array(rows, dtype=np.float64)
        print(f"| {sigma:g} | {int(r[:, 0].sum())} → {int(r[:, 1].sum())} | {r[:, 2].mean():.2f} | {r[:, 3].mean():.2f} "
              f"| {r[:, 4].mean():.2f} | {r[:, 5].mean():.2f} | {r[:, 4].mean() - r[:, 3].mean():+.2f} "
              f"| {r[:, 4].mean() - r[:, 5].mean():+.2f} | {(r[:, 3] - r[:, 5]).min():+.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
