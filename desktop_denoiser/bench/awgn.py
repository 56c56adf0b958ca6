"""``bench awgn``: synthetic additive white Gaussian noise, saved and re-read as 8-bit PNG (or JPEG).

For each clean image (sorted) and sigma: seeded noise -> clipped 8-bit PNG in a temp folder -> read back
-> ours (fidelity with sigma known, fidelity blind, detail) and the peers (CBM3D sigma known, OpenCV NLM).
``--jpeg Q`` saves the noisy images as JPEG of quality Q instead (what photos shared as JPEG look like:
the compression removes part of the noise and correlates the rest); its report goes to the
``awgn_jpeg`` section. "σ known" is then the sigma of the noise before compression.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import peers as peers_mod
from .common import Acc, Timer, megapixels, parse_opts
from .report import fmt, table

# Published CBSD68 colour results (PSNR dB, sigma 15/25/50), for orientation only -- NOT measured here.
PUBLISHED_CBSD68 = {
    "CBM3D (Dabov et al. 2007)": (33.52, 30.71, 27.38),
    "CDnCNN (Zhang et al. 2017)": (33.90, 31.24, 27.95),
    "FFDNet (Zhang et al. 2018)": (33.87, 31.21, 27.96),
    "DRUNet (Zhang et al. 2021)": (34.30, 31.69, 28.51),
}
PUBLISHED_SIGMAS = (15, 25, 50)

METHODS = ("noisy", "ours", "ours_best", "ours_max", "ours_blind", "ours_detail", "cbm3d", "nlm")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", nargs="+", default=["/work/shared/data/dev/CBSD68"],
                   help="folders of clean images (each reported separately)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    p.add_argument("--limit", type=int, default=None, help="first N images (sorted) of each folder")
    p.add_argument("--peers", nargs="*", default=list(peers_mod.PEERS), choices=peers_mod.PEERS)
    p.add_argument("--detail-steps", type=int, default=None,
                   help="detail mode: strided ancestral chain with K steps (default: every step from t*)")
    p.add_argument("--detail-limit", type=int, default=None,
                   help="run detail mode on the first M images only (0 = skip detail mode)")
    p.add_argument("--no-blind", action="store_true", help="skip ours with sigma estimated")
    p.add_argument("--best-views", type=int, default=8, choices=(0, 2, 4, 8),
                   help="also run ours with sigma known at the GUI's Best quality: the network averaged over "
                        "this many flips/rotations (0 = skip)")
    p.add_argument("--max-views", type=int, default=0, choices=(0, 16, 32),
                   help="also run ours with sigma known at the GUI's Maximum quality: the 8 flips/rotations at 2 "
                        "or 4 offsets of the pixel grid (0 = skip, the default)")
    p.add_argument("--jpeg", type=int, default=None, metavar="Q",
                   help="save the noisy images as JPEG of quality Q (1-100) instead of PNG")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="DenoiseOptions field for all our runs (sigma and mode are set by the benchmark)")
    p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                   help="only the images whose index (sorted, from 0) is K modulo N, with the noise they have in a "
                        "whole run: N processes with one --cache fill it in parallel, then a run without "
                        "--shard reuses every result and writes the table")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 0 <= K < N."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 0/2), got {text!r}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def seed_for(index: int, sigma: float) -> int:
    return 100_000 * int(index) + int(round(10 * float(sigma)))


def method_label(m: str, args) -> str:
    if m == "noisy":
        return f"noisy input (8-bit JPEG q{args.jpeg})" if args.jpeg else "noisy input (8-bit)"
    if m == "ours":
        return "**ours fidelity, σ known**"
    if m == "ours_best":
        return f"ours fidelity, σ known, Best quality ({args.best_views}-view ensemble)"
    if m == "ours_max":
        return f"ours fidelity, σ known, Maximum quality ({args.max_views}-view ensemble)"
    if m == "ours_blind":
        return "ours fidelity, blind (σ estimated)"
    if m == "ours_detail":
        chain = f"strided ancestral, {args.detail_steps} steps" if args.detail_steps else "full ancestral chain from t*"
        sub = f"; first {args.detail_limit} image(s) only" if args.detail_limit is not None else ""
        return f"ours detail ({chain}{sub})"
    if m == "cbm3d":
        return "CBM3D (bm3d_rgb), σ known"
    if m == "nlm":
        return (f"OpenCV NLM, σ known (h={peers_mod.NLM_H_PER_SIGMA:g}σ, "
                f"hColor={peers_mod.NLM_HCOLOR_PER_SIGMA:g}σ)")
    return m


def run(args, ctx) -> dict:
    """Returns ``{"datasets": {name: {sigma: {...}}}, "markdown": str}``; ``ctx`` is the shared context
    (denoiser, device, model hash, cache, log)."""
    from ..core.metrics import add_gaussian_noise_8bit, psnr, ssim
    from ..core.sampler import run_to_end
    from ..pipeline.imageio import list_images, read_image, write_image
    from ..pipeline.jobs import DenoiseOptions

    denoiser, log, cache = ctx.denoiser, ctx.log, ctx.cache
    if args.jpeg is not None and not 1 <= args.jpeg <= 100:
        raise ValueError(f"--jpeg must be a quality from 1 to 100, got {args.jpeg}")
    if args.shard and args.write:
        raise ValueError("a --shard run measures part of the images: fill the --cache with shards, then run "
                         "without --shard to write the table")
    extra = parse_opts(args.opt)
    base = replace(DenoiseOptions(), device=ctx.device, **extra)
    opt_tag = ",".join(f"{k}={v}" for k, v in sorted(extra.items()))
    nlm_tag = f"nlm:{peers_mod.NLM_H_PER_SIGMA},{peers_mod.NLM_HCOLOR_PER_SIGMA}"

    def ours(noisy, opts):
        with Timer() as t:
            plan = denoiser.plan(noisy, opts)  # blind: estimates sigma, as process_file does
            res = run_to_end(denoiser.run(noisy, opts, plan))
        return res.pixels, t.seconds, plan.sigma

    out: dict = {"datasets": {}}
    md_parts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dd-bench-awgn-") as tmp:
        for folder in args.data:
            folder = Path(folder)
            paths = list_images(folder)[: args.limit] if args.limit else list_images(folder)
            if not paths:  # an empty table (written with --write over the real one) would help nobody
                raise FileNotFoundError(f"no images in {folder}")
            name = folder.name
            accs = {s: {m: Acc() for m in METHODS} for s in args.sigmas}
            est_err = {s: [] for s in args.sigmas}
            for i, path in enumerate(paths):
                if args.shard and i % args.shard[1] != args.shard[0]:
                    continue  # another shard's image; the seeds follow the index, so the noise is the same
                clean_img = read_image(path)
                clean = clean_img.pixels
                mp = megapixels(clean)
                for sigma in args.sigmas:
                    seed = seed_for(i, sigma)
                    noisy = add_gaussian_noise_8bit(clean, sigma, seed)
                    fmt_ = "JPEG" if args.jpeg else "PNG"
                    saved = Path(tmp) / f"{name}_{path.stem}_s{sigma:g}.{fmt_.lower()}"
                    write_image(saved, noisy, format=fmt_, bit_depth=8, jpeg_quality=args.jpeg or 95, exif=None,
                                icc_profile=None, alpha=False, overwrite=True)
                    noisy = read_image(saved).pixels  # what users really have: clipped, rounded 8-bit
                    a = accs[sigma]
                    a["noisy"].add(psnr(noisy, clean), ssim(noisy, clean), None, mp)
                    key0 = f"awgn|{name}/{path.name}|s={sigma:g}|seed={seed}" + (f"|jpeg={args.jpeg}" if args.jpeg else "")
                    todo = [("ours", replace(base, sigma=float(sigma), mode="fidelity", seed=seed))]
                    for m, views in (("ours_best", args.best_views), ("ours_max", args.max_views)):
                        if views:
                            todo.append((m, replace(base, sigma=float(sigma), mode="fidelity", seed=seed,
                                                    ensemble=views)))
                    if not args.no_blind:
                        todo.append(("ours_blind", replace(base, sigma=None, mode="fidelity", seed=seed)))
                    if args.detail_limit is None or i < args.detail_limit:
                        todo.append(("ours_detail", replace(base, sigma=float(sigma), mode="detail",
                                                            steps=args.detail_steps, seed=seed)))
                    for m, opts in todo:
                        key = f"{key0}|{m}|{ctx.ours_key}|{opt_tag}|steps={opts.steps}"
                        if opts.ensemble != 1:  # --best-views 2 / 4 / 8 (and --max-views) are different results
                            key += f"|ensemble={opts.ensemble}"
                        rec = cache.get(key)
                        if rec is None:
                            den, sec, used_sigma = ours(noisy, opts)
                            rec = {"psnr": psnr(den, clean), "ssim": ssim(den, clean), "seconds": sec,
                                   "sigma_used": used_sigma}
                            cache.put(key, rec)
                        a[m].add(rec["psnr"], rec["ssim"], rec["seconds"], mp)
                        if m == "ours_blind":
                            est_err[sigma].append(rec["sigma_used"] - sigma)
                    if args.no_blind:  # still report the estimator on the same 8-bit image
                        est_err[sigma].append(denoiser.estimate(noisy).sigma - sigma)
                    for peer in args.peers:
                        key = f"{key0}|{peer}|{nlm_tag if peer == 'nlm' else 'bm3d_rgb:np'}"
                        rec = cache.measure(key, clean, lambda: peers_mod.run_peer(peer, noisy, sigma))
                        a[peer].add(rec["psnr"], rec["ssim"], rec["seconds"], mp)
                    log(f"[awgn] {name} {i + 1}/{len(paths)} {path.name} σ={sigma:g}: "
                        + "  ".join(f"{m}={a[m].psnr[-1]:.2f}" for m in METHODS if a[m].psnr
                                    and (m != 'ours_detail' or args.detail_limit is None or i < args.detail_limit)))
            ds = {}
            for sigma in args.sigmas:
                s = {m: accs[sigma][m].summary() for m in METHODS if accs[sigma][m].psnr}
                err = np.asarray(est_err[sigma], np.float64)
                s["estimator"] = {"mae": float(np.mean(np.abs(err))) if err.size else None,
                                  "bias": float(np.mean(err)) if err.size else None, "n": int(err.size)}
                ds[f"{sigma:g}"] = s
            out["datasets"][name] = {"images": len(paths), "sigmas": ds}
            md_parts.append(_markdown_dataset(name, len(paths), ds, args))
    if args.jpeg:
        out["section"] = "awgn_jpeg"
    else:
        md_parts.append(_markdown_published())
    out["markdown"] = "\n\n".join(md_parts)
    return out


def _markdown_dataset(name: str, n: int, ds: dict, args) -> str:
    rows = []
    for sig, s in ds.items():
        for m in METHODS:
            if m not in s:
                continue
            r = s[m]
            rows.append([sig, method_label(m, args), r["n"], fmt(r["psnr"]), fmt(r["ssim"], 4),
                         fmt(r["s_per_img"], 2), fmt(r["mp_per_s"], 3)])
    main = table(["σ", "method", "images", "PSNR (dB)", "SSIM", "s / image", "MP/s"], rows, "llrrrrr")
    rows2 = []
    with_max = any("ours_max" in s for s in ds.values())
    for sig, s in ds.items():
        o = s.get("ours", {})
        diff = lambda m: (o["psnr"] - s[m]["psnr"]) if (o and m in s) else None  # noqa: E731
        vs_cbm3d = lambda m: (s[m]["psnr"] - s["cbm3d"]["psnr"]) if (m in s and "cbm3d" in s) else None  # noqa: E731
        speed = None
        if o and "cbm3d" in s and o.get("s_per_img") and s["cbm3d"].get("s_per_img"):
            speed = s["cbm3d"]["s_per_img"] / o["s_per_img"]
        est = s["estimator"]
        est_txt = f"{fmt(est['mae'])} ({fmt(est['bias'], 2, True)})" if est["n"] else "–"
        rows2.append([sig, est_txt, fmt(diff("noisy"), 2, True), fmt(diff("cbm3d"), 2, True),
                      fmt(diff("nlm"), 2, True), fmt(vs_cbm3d("ours_blind"), 2, True),
                      fmt(vs_cbm3d("ours_best"), 2, True)]
                     + ([fmt(vs_cbm3d("ours_max"), 2, True)] if with_max else [])
                     + [(fmt(speed, 1) + "×") if speed else "–"])
    headers = (["σ", "σ-estimator MAE (bias)", "ours − noisy (dB)", "ours − CBM3D (dB)", "ours − NLM (dB)",
                "ours blind − CBM3D (dB)", "ours Best − CBM3D (dB)"]
               + (["ours Maximum − CBM3D (dB)"] if with_max else []) + ["speed: CBM3D s / ours s"])
    ratios = table(headers, rows2, "l" + "r" * (len(headers) - 1))
    return (f"### {name} ({n} images)\n\n{main}\n\n"
            f"\"ours\" = fidelity mode with σ known. σ-estimator error in 8-bit units on the same noisy "
            f"8-bit images (bias = mean of estimate − true σ).\n\n{ratios}")


def _markdown_published() -> str:
    rows = [[name, *(f"{v:.2f}" for v in vals)] for name, vals in PUBLISHED_CBSD68.items()]
    return ("### Published CBSD68 PSNR (dB) — for orientation only, NOT measured here\n\n"
            + table(["method (published)", *(f"σ={s}" for s in PUBLISHED_SIGMAS)], rows)
            + "\n\nPublished numbers come from the respective papers (usually unclipped float noise); the "
              "measured rows above use clipped, rounded 8-bit noise and this machine's data copy, so small "
              "differences (e.g. CBM3D measured vs published) are expected.")
