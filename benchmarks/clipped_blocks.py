"""Photos with few 8x8 blocks clear of black and white: the noise analysis before and since stop 31.

    python benchmarks/clipped_blocks.py [--data DIR ...] [--sigma 50] [--qualities 75 90] [--every N]

Strong white noise in a dark or saturated photo clips at black or white in nearly every 8x8 block. Below
MIN_BLOCKS blocks clear of the bounds the analysis used to give up and run the white path at the PCA
estimate, which 4:2:0 chroma subsampling collapses, so the noise was left in place; since stop 31 blocks
with up to CLIPPED_BLOCK_MAX_SHARE of their values at a bound are measured too (``core/noise_analysis.py``).
Each photo gets seeded white noise of ``--sigma``, is saved as a 4:2:0 JPEG at each of ``--qualities`` and
analysed with the rule off ("before": CLIPPED_BLOCK_MAX_SHARE = 0) and on. Per set and quality: the photos,
how many went past the clear-block test, how many changed level, and on those the noisy, before, now and
σ-known PSNR, then the mean over all photos before and now. One thread; prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.camera import jpeg
from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser, rule_set
from desktop_denoiser.core import noise_analysis as na
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def analyse_before(image: np.ndarray) -> na.NoiseAnalysis:
    """The analysis as it was before stop 31: blocks with any value at a bound left out."""
    with rule_set(na, "CLIPPED_BLOCK_MAX_SHARE", 0.0):
        return na.analyse_noise(image)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["../shared/data/dev/CBSD68", "../shared/data/dev/McMaster"])
    ap.add_argument("--sigma", type=float, default=50.0)
    ap.add_argument("--qualities", type=int, nargs="+", default=[75, 90])
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = app_denoiser(args.standard)

    def denoise(y: np.ndarray, analysis: na.NoiseAnalysis | None, sigma: float | None = None) -> np.ndarray:
        opts = DenoiseOptions(sigma=sigma)
        plan = d.plan(y, opts, analysis=analysis) if analysis is not None else None
        return run_to_end(d.run(y, opts, plan)).pixels

    print(f"White noise of σ {args.sigma:g}, saved as 4:2:0 JPEG (OpenCV), analysed with the clipped-block rule "
          "off (before) and on (now):\n")
    print("| set | JPEG | photos | past the clear-block test | level changed | on those: noisy / before / now / "
          "σ known (dB) | all photos: before → now (dB) |")
    print("| :--- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for folder in args.data:
        paths = list_images(Path(folder))[:: args.every]
        for q in args.qualities:
            relaxed = 0
            changed, means = [], []
            for i, path in enumerate(paths):
                clean = read_image(path).pixels.astype(np.float32)
                y = jpeg(add_gaussian_noise_8bit(clean, args.sigma, seed=1000 * i + int(args.sigma)), q)
                before, now = analyse_before(y), na.analyse_noise(y)
                relaxed += now.clipped_blocks
                out_now = denoise(y, now)
                if (before.correlated, before.denoise_sigma) == (now.correlated, now.denoise_sigma):
                    means.append((psnr(out_now, clean),) * 2)
                    continue
                p_before = psnr(denoise(y, before), clean)
                p_now = psnr(out_now, clean)
                changed.append((psnr(y, clean), p_before, p_now, psnr(denoise(y, None, args.sigma), clean)))
                means.append((p_before, p_now))
            c = np.array(changed).mean(axis=0) if changed else None
            m = np.array(means).mean(axis=0)
            on_changed = " / ".join(f"{v:.2f}" for v in c) if c is not None else "–"
            print(f"| {Path(folder).name} | q{q} | {len(paths)} | {relaxed} | {len(changed)} | {on_changed} | "
                  f"{m[0]:.2f} → {m[1]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
