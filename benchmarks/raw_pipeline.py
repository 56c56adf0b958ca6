"""Ours, blind (the app's default), on a synthetic camera raw path: noise we have no real photos of.

    python benchmarks/raw_pipeline.py [--data DIR ...] [--every N] [--gains 0.002 0.006]

Clean photos (every Nth of each folder) go through ``desktop_denoiser.bench.camera.raw_pipeline``
(RGGB mosaic, Poisson-Gaussian noise, bilinear or edge-aware demosaicing, 8-bit sRGB), saved as is
(PNG/TIFF) or as JPEG; the reference is the same path without noise. Each row is run twice in the same
process: as shipped, and with the mosaic signature switched off (``MIN_MOSAIC_RATIO`` = inf, the
behaviour before it existed). One thread; prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.camera import DEMOSAIC, jpeg, raw_pipeline
from desktop_denoiser.core import real_noise
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["../shared/data/dev/McMaster", "../shared/data/dev/CBSD68"])
    ap.add_argument("--every", type=int, nargs="+", default=[3, 12], help="every Nth photo of each folder")
    ap.add_argument("--gains", type=float, nargs="+", default=[0.002, 0.006])
    ap.add_argument("--jpeg", type=int, nargs="*", default=[0, 92], help="0 = lossless (PNG/TIFF)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    paths = []
    for folder, n in zip(args.data, args.every + args.every[-1:] * len(args.data)):
        paths += list_images(Path(folder))[::n]
    cleans = [read_image(p).pixels.astype(np.float32) for p in paths]
    cleans = [c[: c.shape[0] // 2 * 2, : c.shape[1] // 2 * 2] for c in cleans]
    denoiser = Denoiser()
    print(f"{len(cleans)} photos: {', '.join(f'every {n}-th photo of `{d}`' for d, n in zip(args.data, args.every))}\n")
    print("| demosaic | gain | saved as | noisy (dB) | ours (dB) | gain (dB) | worst photo | camera noise "
          "| without the mosaic signature: gain / worst / camera noise |")
    print("| :--- | ---: | :--- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for demosaic in DEMOSAIC:
        for gain in args.gains:
            for q in args.jpeg:
                rows = {}
                for label, ratio in (("on", real_noise.MIN_MOSAIC_RATIO), ("off", float("inf"))):
                    saved, real_noise.MIN_MOSAIC_RATIO = real_noise.MIN_MOSAIC_RATIO, ratio
                    try:
                        res = []
                        for i, clean in enumerate(cleans):
                            ref = raw_pipeline(clean, gain, i, demosaic, noise=False)
                            noisy = raw_pipeline(clean, gain, i, demosaic)
                            if q:
                                ref, noisy = jpeg(ref, q), jpeg(noisy, q)
                            plan = denoiser.plan(noisy, DenoiseOptions())
                            out = run_to_end(denoiser.run(noisy, DenoiseOptions(), plan)).pixels
                            res.append((psnr(noisy, ref), psnr(out, ref), plan.real))
                    finally:
                        real_noise.MIN_MOSAIC_RATIO = saved
                        denoiser._last_analysis = None  # the analysis depends on the switch
                    r = np.array(res, dtype=np.float64)
                    rows[label] = (r[:, 0].mean(), r[:, 1].mean(), (r[:, 1] - r[:, 0]).mean(),
                                   (r[:, 1] - r[:, 0]).min(), int(r[:, 2].sum()))
                on, off = rows["on"], rows["off"]
                print(f"| {demosaic} | {gain:g} | {'JPEG q%d' % q if q else 'PNG'} | {on[0]:.2f} | {on[1]:.2f} | "
                      f"{on[2]:+.2f} | {on[3]:+.2f} | {on[4]}/{len(cleans)} | {off[2]:+.2f} / {off[3]:+.2f} / "
                      f"{off[4]}/{len(cleans)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
