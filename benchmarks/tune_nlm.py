"""Tune OpenCV NLM's h / hColor (as multiples of sigma) on training images (never the dev set).

    OMP_NUM_THREADS=1 python benchmarks/tune_nlm.py [--data /work/shared/data/train/CBSD432] [--n 3]

Stage 1: hColor = h = a*sigma over a grid of a. Stage 2: h = a_best*sigma, hColor = b*sigma over b.
Prints mean PSNR over the images per sigma; the chosen factors are hard-coded in desktop_denoiser/bench/peers.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from desktop_denoiser.bench.peers import nlm
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.pipeline.imageio import list_images, read_image


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/train/CBSD432")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    ap.add_argument("--a", type=float, nargs="+", default=[0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6])
    ap.add_argument("--b", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0])
    args = ap.parse_args()
    cv2.setNumThreads(1)
    paths = list_images(args.data)[: args.n]
    print("images:", ", ".join(p.name for p in paths))
    cleans = [read_image(p).pixels for p in paths]

    def score(sigma, a, b):
        vals = []
        for i, c in enumerate(cleans):
            y = add_gaussian_noise_8bit(c, sigma, seed=1000 * i + int(sigma))
            vals.append(psnr(nlm(y, sigma, h=a * sigma, h_color=b * sigma), c))
        return float(np.mean(vals))

    best_a = {}
    print("stage 1: hColor = h = a*sigma")
    for s in args.sigmas:
        res = {a: score(s, a, a) for a in args.a}
        best_a[s] = max(res, key=res.get)
        print(f"  sigma {s:g}: " + "  ".join(f"a={a:g}:{v:.2f}" for a, v in res.items()) + f"  -> best a={best_a[s]:g}")
        sys.stdout.flush()
    a_shared = float(np.median(list(best_a.values())))
    print(f"stage 2: h = {a_shared:g}*sigma, hColor = b*sigma")
    for s in args.sigmas:
        res = {b: score(s, a_shared, b) for b in args.b}
        best = max(res, key=res.get)
        print(f"  sigma {s:g}: " + "  ".join(f"b={b:g}:{v:.2f}" for b, v in res.items()) + f"  -> best b={best:g}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
