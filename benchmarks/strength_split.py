"""Strength with and without the colour noise removed: what is left against the clean reference.

    python benchmarks/strength_split.py [--data PolyU folder] [--limit N] [--strengths 1 0.8 0.6 0.4]
                                        [--awgn SIGMA --clean DIR] [--threads 2]

Each real-noise pair (``*_real`` noisy, ``*_mean`` clean; PolyU Canon 5D Mark II), or with ``--awgn`` each
photo of ``--clean`` with seeded white noise of that σ saved as 8 bits, is denoised once with the app's
defaults (σ estimated, *Auto*), then mixed with its noisy original as the *Strength* and
*Colour noise* controls do (``pipeline/strength.py``): the plain mix (colour noise at the Strength's
share, what Strength alone did before there was a Colour noise control) against the colour noise removed
whole (Colour noise 100 %, the default). Per row, the mean over pairs of the PSNR against the reference
and the difference to the reference split into its brightness (BT.601 luma) and colour parts (std in
8-bit units): grain kept shows in the first, colour speckles and blotches in the second. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.real import find_pairs
from desktop_denoiser.bench.report import fmt, table
from desktop_denoiser.core.metrics import LUMA_WEIGHTS, add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser
from desktop_denoiser.pipeline.strength import apply_strength


def split_std(diff: np.ndarray) -> tuple[float, float]:
    """Std (8-bit units) of ``diff``'s luma and of its colour part (diff minus its luma in each channel)."""
    luma = diff @ np.asarray(LUMA_WEIGHTS, np.float32)
    return float(luma.std() * 255), float((diff - luma[..., None]).std() * 255)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data/dev-real/PolyU-Canon5D2")
    p.add_argument("--limit", type=int, default=None, help="first N pairs (sorted)")
    p.add_argument("--strengths", type=float, nargs="+", default=[1.0, 0.8, 0.6, 0.4])
    p.add_argument("--awgn", type=float, default=None, metavar="SIGMA",
                   help="white noise of this σ (8-bit units) on the photos of --clean instead of the real pairs")
    p.add_argument("--clean", default="/work/shared/data/dev/CBSD68", help="clean photos for --awgn")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: the library's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.awgn is None:
        source = Path(args.data)
        pairs = [(lambda n=n: read_image(n).pixels, c) for n, c in find_pairs(source)][: args.limit]
        title = f"{source.name}, {len(pairs)} pairs"
    else:
        source = Path(args.clean)
        pairs = [(lambda c=c, i=i: add_gaussian_noise_8bit(read_image(c).pixels, args.awgn, seed=i), c)
                 for i, c in enumerate(list_images(source)[: args.limit])]
        title = f"{source.name}, {len(pairs)} photos, white noise σ {args.awgn:g} saved as 8 bits"
    if not pairs:
        print(f"nothing to measure in {source}", file=sys.stderr)
        return 1
    denoiser = Denoiser()
    opts = DenoiseOptions(device="cpu")
    rows: dict[tuple[str, float], list[tuple[float, float, float]]] = {}
    for load_noisy, clean_path in pairs:
        noisy, clean = load_noisy().astype(np.float32), read_image(clean_path).pixels
        full = run_to_end(denoiser.run(noisy, opts)).pixels
        rows.setdefault(("noisy input", 0.0), []).append((psnr(noisy, clean), *split_std(noisy - clean)))
        for s in args.strengths:
            mixes = [("colour noise removed (100 %)", 1.0)]
            if s < 1.0:  # at 100 % the plain mix is the denoised photo too
                mixes.insert(0, ("plain mix (colour noise at the Strength)", s))
            for label, colour in mixes:
                out = np.clip(apply_strength(noisy, full, s, colour), 0, 1)
                rows.setdefault((label, s), []).append((psnr(out, clean), *split_std(out - clean)))
    body = [[label, "–" if label == "noisy input" else f"{round(s * 100)} %",
             fmt(float(np.mean([r[0] for r in vals]))), fmt(float(np.mean([r[1] for r in vals]))),
             fmt(float(np.mean([r[2] for r in vals])))]
            for (label, s), vals in rows.items()]
    print(f"{title}, the app's defaults (Auto), mean over the photos\n")
    print(table(["result", "Strength", "PSNR (dB)", "brightness difference (std)", "colour difference (std)"], body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
