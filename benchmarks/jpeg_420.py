"""White noise saved as JPEG with 4:2:0 chroma subsampling (the default of OpenCV, PIL, cameras and phones).

    python benchmarks/jpeg_420.py [--data DIR] [--every N] [--quality 90] [--sigmas 10 15 25 50]

The subsampled chroma hides the noise from the white-noise PCA estimate; the noise analysis recognises
the signature and uses the flat-block level when the flat blocks' channel correlation says colour noise,
not near-grey texture (``core/real_noise.py``: HIDDEN_NOISE_MAX_CHANNEL_CORR), or when the luminance
plane's own estimate confirms white noise (HIDDEN_NOISE_LUMA_MIN_RATIO). Per σ: the noisy JPEG, *Auto*
with both rules switched off (what the app did before them), *Auto* now, how often the level was
applied, and σ known. Every Nth photo, seeded noise, one thread; prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.camera import jpeg
from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/dev/CBSD68")
    ap.add_argument("--every", type=int, default=6)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[10, 15, 25, 50])
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = app_denoiser(args.standard)
    paths = list_images(Path(args.data))[:: args.every]
    print(f"{len(paths)} photos of `{args.data}` (every {args.every}th), noisy 8-bit, saved as JPEG q{args.quality} "
          f"4:2:0\n")
    print("| σ | noisy JPEG (dB) | Auto, rule off (dB) | Auto (dB) | level applied | σ known (dB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for sigma in args.sigmas:
        rows = []
        for i, path in enumerate(paths):
            clean = read_image(path).pixels.astype(np.float32)
            y = jpeg(add_gaussian_noise_8bit(clean, sigma, seed=1000 * i + int(sigma)), args.quality)  # 4:2:0
            a = d.estimate(y).analysis
            auto = run_to_end(d.run(y, DenoiseOptions(), d.plan(y, DenoiseOptions(), analysis=a))).pixels
            off = d.plan(y, DenoiseOptions(), analysis=replace(a, channel_corr=1.0))  # fails both rules
            before = run_to_end(d.run(y, DenoiseOptions(), off)).pixels
            known = run_to_end(d.run(y, DenoiseOptions(sigma=float(sigma)))).pixels
            rows.append((psnr(y, clean), psnr(before, clean), psnr(auto, clean), a.hidden_noise_applied,
                         psnr(known, clean)))
        r = np.array(rows, dtype=np.float64)
        print(f"| {sigma:g} | {r[:, 0].mean():.2f} | {r[:, 1].mean():.2f} | {r[:, 2].mean():.2f} | "
              f"{int(r[:, 3].sum())}/{len(r)} | {r[:, 4].mean():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
