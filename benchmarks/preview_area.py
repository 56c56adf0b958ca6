"""What *Preview area* costs against the whole photo, and how close the part comes to the whole run.

    python benchmarks/preview_area.py [--mp 12 24] [--views 870x720 435x360] [--threads 2] [--no-whole]

A synthetic photo-like image (``bench.speed.synthetic_photo``, σ 25 white noise, 8-bit) of each ``--mp``
size is analysed once (what opening it in the app does), then denoised whole and as the part of it a
window shows (``--views``: the viewer's size in screen pixels at 100 %; 870x720 is the viewer of a
1280x800 window, 435x360 the same window at 200 %), the part centred, with the app's defaults (fidelity,
*Auto* network) and the region cut as the GUI cuts it (``pipeline/region.py``). Per row: the part's
and its crop's size, seconds for the preview and for the whole photo, their ratio, and the PSNR of the
previewed part against the same part of the whole run (inf: identical). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.report import fmt, table
from desktop_denoiser.bench.speed import add_noise_u8, synthetic_photo
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser
from desktop_denoiser.pipeline.region import plan_region


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mp", type=float, nargs="+", default=[12.0, 24.0], help="photo sizes in megapixels")
    p.add_argument("--views", type=_size, nargs="+", default=[(870, 720), (435, 360)],
                   help="areas in view, WIDTHxHEIGHT photo pixels")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: the library's default)")
    p.add_argument("--no-whole", action="store_true", help="skip the whole-photo runs (no ratio, no PSNR)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    denoiser = Denoiser()
    opts = DenoiseOptions(device="cpu")
    rows = []
    for mp in args.mp:
        noisy = add_noise_u8(synthetic_photo(mp), 25.0, seed=0).astype(np.float32) / 255
        h, w = noisy.shape[:2]
        t0 = time.perf_counter()
        est = denoiser.estimate(noisy)
        t_est = time.perf_counter() - t0
        whole, t_whole = None, None
        if not args.no_whole:
            t0 = time.perf_counter()
            whole = run_to_end(denoiser.run(noisy, opts, denoiser.plan(noisy, opts, analysis=est.analysis)))
            t_whole = time.perf_counter() - t0
        for vw, vh in args.views:
            x0, y0 = (w - vw) // 2, (h - vh) // 2
            region = plan_region((w, h), (x0, y0, x0 + vw, y0 + vh))
            crop = region.cut(noisy)
            t0 = time.perf_counter()
            part = run_to_end(denoiser.run(crop, opts, denoiser.plan(crop, opts, analysis=est.analysis)))
            t_part = time.perf_counter() - t0
            bx0, by0, bx1, by1 = region.box
            cx0, cy0, cx1, cy1 = region.crop
            close = None
            if whole is not None:
                close = psnr(part.pixels[by0 - cy0:by1 - cy0, bx0 - cx0:bx1 - cx0], whole.pixels[by0:by1, bx0:bx1])
            rows.append([f"{w}×{h} ({mp:g} MP)", f"{bx1 - bx0}×{by1 - by0}", f"{cx1 - cx0}×{cy1 - cy0}",
                         fmt(t_est), fmt(t_part), fmt(t_whole, 1), fmt(t_whole / t_part if t_whole else None, 1),
                         fmt(close), part.network])
            print(f"{mp:g} MP, {vw}x{vh}: preview {t_part:.2f} s", file=sys.stderr)
    print(f"`python benchmarks/preview_area.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
          f"(torch {torch.__version__}, {torch.get_num_threads()} thread(s), σ 25, fidelity, *Auto* network)\n")
    print(table(["photo", "part in view", "crop run (with context)", "analysis s (once, on opening)",
                 "preview s", "whole photo s", "whole / preview", "part vs whole run (dB)", "network"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
