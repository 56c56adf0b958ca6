"""Grey grain on colour photos: white noise that is the same in the three channels (stop 32).

    python benchmarks/grey_grain.py [--data DIR ...] [--every N] [--sigmas 5 10 15 25] [--jpeg Q]

Monochrome grain, or the luminance noise that colour noise reduction leaves, is invisible to the RGB
white-noise (PCA) estimate and its channels correlate beyond the hidden-noise rules' limits, so *Auto*
returned such photos as they were. ``core/noise_analysis.py: NoiseAnalysis.grey_grain`` measures it on
the luminance plane. Each photo gets seeded grey noise of σ (8-bit, the same draw in R, G and B), saved as
PNG (or JPEG 4:4:4 of ``--jpeg`` quality), and is denoised blind with the rule off (the app before) and on
(now), and with σ known; prints a markdown table. One thread.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from PIL import Image

from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser, rule_set
from desktop_denoiser.core import noise_analysis
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def grey_noise(clean: np.ndarray, sigma: float, seed: int, jpeg: int | None) -> np.ndarray:
    """``clean`` (float RGB) with the same Gaussian draw of ``sigma`` (8-bit units) in each channel, 8-bit,
    optionally through a JPEG of quality ``jpeg`` without chroma subsampling."""
    n = np.random.default_rng(seed).standard_normal(clean.shape[:2])[..., None] * sigma
    q = np.clip(np.round(clean * 255 + n), 0, 255).astype(np.uint8)
    if jpeg:
        buf = io.BytesIO()
        Image.fromarray(q).save(buf, "JPEG", quality=jpeg, subsampling=0)
        q = np.asarray(Image.open(buf).convert("RGB"))
    return q.astype(np.float32) / 255


def blind(d, noisy: np.ndarray, rule: bool):
    """The app's blind run with the grey-grain rule on (now) or off (before)."""
    ratio = noise_analysis.GREY_GRAIN_MIN_LUMA_RATIO if rule else float("inf")
    with rule_set(noise_analysis, "GREY_GRAIN_MIN_LUMA_RATIO", ratio):
        return run_to_end(d.run(noisy, DenoiseOptions())), d.estimate(noisy).analysis


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["../shared/data/dev/CBSD68", "../shared/data/dev/McMaster"])
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[5, 10, 15, 25])
    ap.add_argument("--jpeg", type=int, default=None, metavar="Q", help="save as JPEG 4:4:4 of quality Q")
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = app_denoiser(args.standard)
    paths = [p for folder in args.data for p in list_images(Path(folder))[:: args.every]]
    saved = f"JPEG q{args.jpeg} 4:4:4" if args.jpeg else "PNG"
    print(f"{len(paths)} photos (every {args.every}th of {', '.join(args.data)}), grey noise, 8-bit, {saved}\n")
    print("| σ | noisy (dB) | Auto before (dB) | **Auto** (dB) | grey grain found | level (mean) | σ known (dB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for sigma in args.sigmas:
        rows = []
        for i, path in enumerate(paths):
            clean = read_image(path).pixels[..., :3].astype(np.float32)
            noisy = grey_noise(clean, sigma, 1000 * i + int(sigma), args.jpeg)
            before, _ = blind(d, noisy, rule=False)
            now, analysis = blind(d, noisy, rule=True)
            known = run_to_end(d.run(noisy, DenoiseOptions(sigma=float(sigma))))
            rows.append((psnr(noisy, clean), psnr(before.pixels, clean), psnr(now.pixels, clean),
                         analysis.grey_grain, now.sigma, psnr(known.pixels, clean)))
        r = np.array(rows, dtype=np.float64)
        print(f"| {sigma:g} | {r[:, 0].mean():.2f} | {r[:, 1].mean():.2f} | **{r[:, 2].mean():.2f}** | "
              f"{int(r[:, 3].sum())} of {len(r)} | {r[:, 4].mean():.1f} | {r[:, 5].mean():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
