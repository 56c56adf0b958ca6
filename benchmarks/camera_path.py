"""The camera-noise path with and without pixel-shuffled sub-images, for the camera network.

    python benchmarks/camera_path.py [--pairs PolyU folder] [--clean CBSD68 folder] [--sim N] [--crop 256]
                                     [--clean-check FOLDER ...] [--threads 2]

The shipped path (``core/real_noise.py``) denoises camera noise in 2x2 pixel-shuffled sub-images at the
measured level, where correlated noise is closer to white (it was built for the white-noise networks),
then refines the whole photo at 0.5 x that level. The camera network was trained on whole simulated
camera photos (``core/camera_sim.py``), so it may not need the sub-images: ``plan_real(...,
sub_images=False)`` runs the first pass on the whole photo at the same level (the same cost: two
passes). Per set, the mean PSNR of *Auto* with each path (the same noise analysis and network):

* real pairs (``--pairs``: ``*_real`` / ``*_mean``, PolyU Canon 5D Mark II);
* ``--sim N`` crops of the ``--clean`` photos through random simulated cameras (seeded; the camera
  network's own training distribution, so optimistic for it);
* ``--clean-check``: clean photos that *Auto* takes for camera noise (the others are not affected):
  PSNR against themselves and how many come back at >= 45 dB.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.real import CLEAN_PSNR, find_pairs
from desktop_denoiser.bench.report import fmt, table
from desktop_denoiser.core.camera_sim import camera_training_pair
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.real_noise import plan_real
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser

PATHS = (("sub-images + refinement (shipped)", True), ("whole photo + refinement", False))


def both_paths(denoiser: Denoiser, noisy: np.ndarray) -> dict[str, np.ndarray] | None:
    """Each path's result for ``noisy``, or None when *Auto* does not take it for camera noise."""
    opts = DenoiseOptions(device="cpu")
    plan = denoiser.plan(noisy, opts)
    if not plan.real:
        return None
    out = {}
    for label, sub_images in PATHS:
        real_plan = plan_real(denoiser.schedule, plan.analysis, opts.mode, opts.steps, sub_images=sub_images)
        out[label] = run_to_end(denoiser.run(noisy, opts, replace(plan, real_plan=real_plan))).pixels
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default="/work/shared/data/dev-real/PolyU-Canon5D2", help="real pairs ('' to skip)")
    p.add_argument("--clean", default="/work/shared/data/dev/CBSD68", help="clean photos for --sim")
    p.add_argument("--sim", type=int, default=24, help="simulated-camera crops (0 to skip)")
    p.add_argument("--crop", type=int, default=256, help="crop size of the simulated-camera photos")
    p.add_argument("--clean-check", nargs="*", default=[], metavar="FOLDER",
                   help="folders of clean photos: those taken for camera noise, per path")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: the library's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    denoiser = Denoiser()
    sets: list[tuple[str, list]] = []  # (name, [a function giving (noisy, reference)])
    if args.pairs:
        sets.append((f"{Path(args.pairs).name} (real)",
                     [lambda n=n, c=c: (read_image(n).pixels, read_image(c).pixels)
                      for n, c in find_pairs(Path(args.pairs))]))
    if args.sim:
        def simulated(f: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
            clean = read_image(f).pixels[: args.crop, : args.crop]
            clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]  # whole 2x2 mosaic cells
            reference, noisy = camera_training_pair(clean, np.random.default_rng(100 + i))
            return noisy, reference

        sets.append((f"simulated cameras ({Path(args.clean).name} crops)",
                     [lambda f=f, i=i: simulated(f, i) for i, f in enumerate(list_images(args.clean)[: args.sim])]))
    for folder in args.clean_check:
        sets.append((f"{Path(folder).name}, clean (vs itself)",
                     [lambda f=f: (read_image(f).pixels,) * 2 for f in list_images(folder)]))
    rows = []
    for name, items in sets:
        scores: dict[str, list[float]] = {label: [] for label, _ in PATHS}
        for load in items:
            noisy, ref = load()
            outs = both_paths(denoiser, noisy)
            if outs is None:
                continue
            for label, out in outs.items():
                scores[label].append(psnr(out, ref))
        clean = name.endswith("(vs itself)")
        for label, vals in scores.items():
            ok = f"{sum(v >= CLEAN_PSNR for v in vals)}/{len(vals)}" if clean else "–"
            rows.append([name, f"{len(vals)} of {len(items)}", label,
                         fmt(float(np.mean(vals))) if vals else "–", fmt(min(vals)) if vals else "–", ok])
    print(table(["set", "camera path", "path", "mean PSNR (dB)", "worst", f">= {CLEAN_PSNR:g} dB"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
