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
* ``--held-out N`` crops through random cameras of a family the network never trained on
  (``desktop_denoiser/bench/camera.py: held_out_camera_pair``: another tone curve, colour matrix and
  demosaicing, row noise, median chroma and edge-preserving luminance noise reduction, PIL JPEG);
* ``--clean-check``: clean photos that *Auto* takes for camera noise (the others are not affected):
  PSNR against themselves and how many come back at >= 45 dB.
Prints a markdown table: per set and path the mean PSNR (and the noisy input's), and for each
``--switch`` level L the path that runs the whole photo only where the measured level is >= L (the
sub-images below it), computed from the same results. ``--jsonl FILE`` writes one line per photo.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.camera import held_out_camera_pair
from desktop_denoiser.bench.real import CLEAN_PSNR, find_pairs
from desktop_denoiser.bench.report import fmt, table
from desktop_denoiser.core.camera_sim import camera_training_pair
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.real_noise import plan_real
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser

PATHS = (("sub-images + refinement (shipped)", True), ("whole photo + refinement", False))


def both_paths(denoiser: Denoiser, noisy: np.ndarray) -> tuple[float, dict[str, np.ndarray]] | None:
    """The measured level and each path's result for ``noisy``, or None when *Auto* does not take it for
    camera noise."""
    opts = DenoiseOptions(device="cpu")
    plan = denoiser.plan(noisy, opts)
    if not plan.real:
        return None
    out = {}
    for label, sub_images in PATHS:
        real_plan = plan_real(denoiser.schedule, plan.analysis, opts.mode, opts.steps, sub_images=sub_images)
        out[label] = run_to_end(denoiser.run(noisy, opts, replace(plan, real_plan=real_plan))).pixels
    return plan.analysis.camera_sigma, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default="/work/shared/data/dev-real/PolyU-Canon5D2", help="real pairs ('' to skip)")
    p.add_argument("--clean", default="/work/shared/data/dev/CBSD68", help="clean photos for --sim")
    p.add_argument("--sim", type=int, default=24, help="simulated-camera crops (0 to skip)")
    p.add_argument("--held-out", type=int, default=0, help="crops through the held-out camera family (0 to skip)")
    p.add_argument("--crop", type=int, default=256, help="crop size of the simulated-camera photos")
    p.add_argument("--clean-check", nargs="*", default=[], metavar="FOLDER",
                   help="folders of clean photos: those taken for camera noise, per path")
    p.add_argument("--switch", type=float, nargs="*", default=[], metavar="LEVEL",
                   help="also report: the whole photo where the measured level is >= LEVEL, else sub-images")
    p.add_argument("--jsonl", default=None, help="write one JSON line per photo here")
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

    def crops(pair_fn, seed0: int, n: int):
        def make(f: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
            clean = read_image(f).pixels[: args.crop, : args.crop]
            clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]  # whole 2x2 mosaic cells
            reference, noisy = pair_fn(clean, np.random.default_rng(seed0 + i))
            return noisy, reference

        return [lambda f=f, i=i: make(f, i) for i, f in enumerate(list_images(args.clean)[:n])]

    if args.sim:
        sets.append((f"simulated cameras ({Path(args.clean).name} crops)", crops(camera_training_pair, 100, args.sim)))
    if args.held_out:
        sets.append((f"held-out camera family ({Path(args.clean).name} crops)",
                     crops(held_out_camera_pair, 200, args.held_out)))
    for folder in args.clean_check:
        sets.append((f"{Path(folder).name}, clean (vs itself)",
                     [lambda f=f: (read_image(f).pixels,) * 2 for f in list_images(folder)]))
    log = open(args.jsonl, "w") if args.jsonl else None
    rows = []
    for name, items in sets:
        records = []  # (level, noisy PSNR, {path: PSNR})
        for k, load in enumerate(items):
            noisy, ref = load()
            res = both_paths(denoiser, noisy)
            if res is None:
                continue
            level, outs = res
            rec = (level, psnr(noisy, ref), {label: psnr(out, ref) for label, out in outs.items()})
            records.append(rec)
            if log:
                log.write(json.dumps({"set": name, "item": k, "level": level, "noisy": rec[1], **rec[2]}) + "\n")
                log.flush()
        clean = name.endswith("(vs itself)")
        paths = {label: [r[2][label] for r in records] for label, _ in PATHS}
        for level in args.switch:
            paths[f"whole photo from level {level:g} (sub-images below)"] = [
                r[2][PATHS[1][0] if r[0] >= level else PATHS[0][0]] for r in records]
        noisy_mean = fmt(float(np.mean([r[1] for r in records]))) if records and not clean else "–"
        for label, vals in paths.items():
            ok = f"{sum(v >= CLEAN_PSNR for v in vals)}/{len(vals)}" if clean else "–"
            rows.append([name, f"{len(vals)} of {len(items)}", noisy_mean, label,
                         fmt(float(np.mean(vals))) if vals else "–", fmt(min(vals)) if vals else "–", ok])
    if log:
        log.close()
    print(table(["set", "camera path", "noisy (dB)", "path", "mean PSNR (dB)", "worst", f">= {CLEAN_PSNR:g} dB"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
