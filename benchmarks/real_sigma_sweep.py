"""How much of the PolyU gap could a better noise level close? A sweep of the camera-noise path's levels.

    python benchmarks/real_sigma_sweep.py [--data ../shared/data/dev-real/PolyU-Canon5D2]
                                          [--scales 0.7 0.85 1 1.2 1.5] [--refine 0.35 0.5 0.7]
                                          [--model FILE]

Every noisy photo goes through the camera-noise path (pixel-shuffled sub-images at k x the measured
per-pixel sigma, then a full-resolution refinement at r x it; ``core/real_noise.py``) for every k and r,
and through *Auto* (what the app does). Prints the mean PSNR per (k, r) over all pairs, the even and the
odd ones, and the per-photo best of everything (an oracle that knows the reference): an upper bound on
what any choice of these two levels, per photo, can reach with this network. One process, 2 threads.
``--model FILE`` runs that weights file for every photo instead of the shipped networks (e.g. a
checkpoint of a training run: ``--scales 1 --refine 0.5`` then gives its PolyU score quickly).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.real import find_pairs
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.real_noise import plan_real
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser, JobPlan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/dev-real/PolyU-Canon5D2")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.7, 0.85, 1.0, 1.2, 1.5])
    ap.add_argument("--refine", type=float, nargs="+", default=[0.35, 0.5, 0.7])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="a weights file for every photo (default: the shipped networks)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    d = Denoiser(args.model)
    opts = DenoiseOptions()
    settings = [(k, r) for k in args.scales for r in args.refine]
    rows = []  # per pair: noisy, Auto, then one PSNR per setting
    for noisy_path, clean_path in find_pairs(Path(args.data)):
        y, ref = read_image(noisy_path).pixels, read_image(clean_path).pixels
        a = d.estimate(y).analysis
        row = [psnr(y, ref), psnr(run_to_end(d.run(y, opts, d.plan(y, opts, analysis=a))).pixels, ref)]
        for k, r in settings:
            scaled = replace(a, correlated=True, sigma=k * a.sigma)
            plan = JobPlan.real_noise(scaled, plan_real(d.schedule, scaled, refine_scale=r / k))
            row.append(psnr(run_to_end(d.run(y, opts, plan)).pixels, ref))
        rows.append(row)
        print(f"{noisy_path.name}: σ {a.sigma:.2f}, Auto {row[1]:.2f}, best {max(row[1:]):.2f}",
              file=sys.stderr, flush=True)
    m = np.array(rows)
    print(f"\n{len(m)} pairs of `{args.data}`; the camera-noise path at k x and r x the measured σ\n")
    print("| setting | all (dB) | even pairs | odd pairs |")
    print("| :--- | ---: | ---: | ---: |")

    def line(label: str, v: np.ndarray) -> None:
        print(f"| {label} | {v.mean():.2f} | {v[0::2].mean():.2f} | {v[1::2].mean():.2f} |")

    line("noisy input", m[:, 0])
    line("**Auto** (the app)", m[:, 1])
    for j, (k, r) in enumerate(settings):
        line(f"k {k:g}, r {r:g}" + (" (the path's default)" if (k, r) == (1.0, 0.5) else ""), m[:, 2 + j])
    line("per-photo best of all the above (oracle)", m[:, 1:].max(1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
