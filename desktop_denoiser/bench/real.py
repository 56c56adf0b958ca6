"""``bench real``: real camera noise, PolyU Canon 5D Mark II pairs (``*_real.JPG`` noisy, ``*_mean.JPG``
clean, 512x512). Ours runs the pipeline's default path (DenoiseOptions(), sigma estimated, plus any
``--opt key=value``); CBM3D and NLM get the sigma from our estimator.

Clean-photo check (``--clean``): the same default path on photos *without* added noise (the PolyU
``*_mean`` references, and any folders given, e.g. CBSD68 and McMaster): the output should be the input
(PSNR >= CLEAN_PSNR dB). Reports how many pass, how many were taken for camera noise, and the worst."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from . import peers as peers_mod
from .common import Acc, Timer, megapixels, parse_opts
from .report import fmt, table

METHODS = ("noisy", "ours", "cbm3d", "nlm")
CLEAN_PSNR = 45.0  # dB: a clean photo must come back (almost) unchanged


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="/work/shared/data/dev-real/PolyU-Canon5D2")
    p.add_argument("--limit", type=int, default=None, help="first N pairs (sorted)")
    p.add_argument("--peers", nargs="*", default=list(peers_mod.PEERS), choices=peers_mod.PEERS)
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="set a DenoiseOptions field for ours (repeatable), e.g. --opt ensemble=2")
    p.add_argument("--variant", default=None, help="label of our row (default: from --opt)")
    p.add_argument("--clean", nargs="*", default=None, metavar="DIR",
                   help="also check that clean photos come back unchanged: the pairs' *_mean images and the "
                        "images in these folders (none given: the *_mean images only)")


def find_pairs(folder: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for noisy in sorted(Path(folder).glob("*_real.*")):
        stem = noisy.name[: -len("_real" + noisy.suffix)]
        clean = noisy.with_name(f"{stem}_mean{noisy.suffix}")
        if clean.exists():
            pairs.append((noisy, clean))
    return pairs


def run(args, ctx) -> dict:
    from ..core.metrics import psnr, ssim
    from ..core.sampler import run_to_end
    from ..pipeline.imageio import list_images, read_image
    from ..pipeline.jobs import DenoiseOptions

    denoiser, log, cache = ctx.denoiser, ctx.log, ctx.cache
    extra = parse_opts(args.opt)
    extra.setdefault("device", ctx.device)
    opts = replace(DenoiseOptions(), **extra)
    variant = args.variant or (", ".join(f"{k}={v}" for k, v in extra.items() if k != "device") or "default options")
    opt_tag = ",".join(f"{k}={v}" for k, v in sorted(extra.items()) if k != "device")
    nlm_tag = f"nlm:{peers_mod.NLM_H_PER_SIGMA},{peers_mod.NLM_HCOLOR_PER_SIGMA}"
    pairs = find_pairs(Path(args.data))
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        raise FileNotFoundError(f"no *_real / *_mean pairs in {args.data}")
    accs = {m: Acc() for m in METHODS}
    sigmas, ours_sigmas = [], []
    for i, (npath, cpath) in enumerate(pairs):
        noisy, clean = read_image(npath).pixels, read_image(cpath).pixels
        mp = megapixels(clean)
        name = npath.name
        key_name = f"{npath.parent.name}/{name}"  # pairs of two folders may share file names
        accs["noisy"].add(psnr(noisy, clean), ssim(noisy, clean), None, mp)
        est = denoiser.estimate(noisy).sigma
        sigmas.append(est)
        key = f"real|{key_name}|ours|{ctx.ours_key}|{opt_tag}"
        rec = cache.get(key)
        if rec is None:
            with Timer() as t:
                plan = denoiser.plan(noisy, opts)
                res = run_to_end(denoiser.run(noisy, opts, plan))
            rec = {"psnr": psnr(res.pixels, clean), "ssim": ssim(res.pixels, clean), "seconds": t.seconds,
                   "sigma_used": plan.sigma}
            cache.put(key, rec)
        accs["ours"].add(rec["psnr"], rec["ssim"], rec["seconds"], mp)
        ours_sigmas.append(rec["sigma_used"])
        for peer in args.peers:
            key = f"real|{key_name}|{peer}|{nlm_tag if peer == 'nlm' else 'bm3d_rgb:np'}|sigma={est:.4f}"
            rec = cache.measure(key, clean, lambda: peers_mod.run_peer(peer, noisy, est))
            accs[peer].add(rec["psnr"], rec["ssim"], rec["seconds"], mp)
        log(f"[real] {i + 1}/{len(pairs)} {name} σ̂={est:.2f}: "
            + "  ".join(f"{m}={accs[m].psnr[-1]:.2f}" for m in METHODS if accs[m].psnr))
    summ = {m: accs[m].summary() for m in METHODS if accs[m].psnr}
    peer_psnr = {p: summ[p]["psnr"] for p in args.peers if p in summ}
    best_peer = max(peer_psnr, key=peer_psnr.get) if peer_psnr else None
    margin = summ["ours"]["psnr"] - peer_psnr[best_peer] if best_peer else None
    mean_sigma = sum(sigmas) / len(sigmas)
    labels = {"noisy": "noisy input", "ours": f"**ours ({variant})**",
              "cbm3d": "CBM3D, σ from our estimator", "nlm": "OpenCV NLM, σ from our estimator"}
    rows = [[labels[m], r["n"], fmt(r["psnr"]), fmt(r["ssim"], 4), fmt(r["s_per_img"]), fmt(r["mp_per_s"], 3)]
            for m, r in summ.items()]
    md = (f"### {Path(args.data).name} ({len(pairs)} pairs, mean over pairs)\n\n"
          + table(["method", "pairs", "PSNR (dB)", "SSIM", "s / image", "MP/s"], rows)
          + f"\n\nMean estimated σ: {mean_sigma:.2f} (8-bit units; ours used {sum(ours_sigmas) / len(ours_sigmas):.2f}; "
            f"the peers get max(σ̂, 0.5)). "
          + (f"Ours − best peer ({best_peer.upper() if best_peer == 'nlm' else 'CBM3D'}): "
             f"**{fmt(margin, 2, True)} dB**." if best_peer else ""))
    clean = None
    if args.clean is not None:
        sets = [(f"{Path(args.data).name} *_mean", [c for _, c in pairs])]
        for folder in args.clean:
            files = list_images(folder)
            sets.append((Path(folder).name, files[: args.limit] if args.limit else files))
        clean = clean_check(sets, denoiser, opts, opt_tag, ctx)
        md += "\n\n" + clean["markdown"]
    return {"pairs": len(pairs), "variant": variant, "clean": clean and clean["sets"], "options": {k: str(v) for k, v in extra.items()},
            "methods": summ, "mean_sigma": mean_sigma, "best_peer": best_peer, "ours_minus_best_peer": margin,
            "markdown": md}


def clean_check(sets, denoiser, opts, opt_tag: str, ctx) -> dict:
    """Ours (same options) on clean photos: PSNR of the output against the input itself."""
    from ..core.metrics import psnr
    from ..core.sampler import run_to_end
    from ..pipeline.imageio import read_image

    rows, out = [], []
    for label, files in sets:
        recs = []
        for path in files:
            key = f"clean|{Path(path).parent.name}/{Path(path).name}|{ctx.ours_key}|{opt_tag}"
            rec = ctx.cache.get(key)
            if rec is None:
                x = read_image(path).pixels
                plan = denoiser.plan(x, opts)
                res = run_to_end(denoiser.run(x, opts, plan))
                rec = {"psnr": psnr(res.pixels, x), "sigma": plan.sigma, "real": plan.real}
                ctx.cache.put(key, rec)
            recs.append((rec, Path(path).name))
            ctx.log(f"[clean] {label}: {Path(path).name} σ̂={rec['sigma']:.2f} real={rec['real']} "
                    f"PSNR vs input={rec['psnr']:.2f}")
        ps = [min(r["psnr"], 99.0) for r, _ in recs]
        worst_rec, worst_name = min(recs, key=lambda rn: rn[0]["psnr"])
        entry = {"set": label, "n": len(recs), "pass": sum(p >= CLEAN_PSNR for p in ps),
                 "real_path": sum(bool(r["real"]) for r, _ in recs), "median_psnr": float(sorted(ps)[len(ps) // 2]),
                 "worst": worst_name, "worst_psnr": worst_rec["psnr"], "worst_sigma": worst_rec["sigma"]}
        out.append(entry)
        rows.append([label, entry["n"], f"{entry['pass']}/{entry['n']}", entry["real_path"],
                     fmt(entry["median_psnr"]), f"{worst_name}: {fmt(entry['worst_psnr'])} (σ̂ {entry['worst_sigma']:.1f})"])
    md = ("### Clean photos (no noise added): does the output equal the input?\n\n"
          + table(["photos", "n", f"PSNR ≥ {CLEAN_PSNR:.0f} dB vs input", "taken for camera noise",
                   "median PSNR (dB, capped at 99)", "worst"], rows))
    return {"sets": out, "markdown": md}
