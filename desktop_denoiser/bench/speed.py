"""``bench speed``: end-to-end CLI throughput and peak memory on large synthetic photos, plus an
in-process speed comparison with CBM3D on a crop of the same image."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..core.precision import DTYPES
from ..pipeline.devices import NETWORKS, PRECISIONS, resolve_device, resolve_network, resolve_precision
from . import peers as peers_mod
from .common import Timer, positive_float
from .report import fmt, table

REPO_ROOT = Path(__file__).resolve().parents[2]
TIME_BIN = "/usr/bin/time"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mp", type=positive_float, nargs="+", default=[12, 24], help="image sizes in megapixels")
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="file format of the test photo")
    p.add_argument("--crop-mp", type=float, default=1.0, help="crop size (MP) for the CBM3D comparison; 0 = skip")
    p.add_argument("--peers", nargs="*", default=["cbm3d"], choices=peers_mod.PEERS,
                   help="peers timed on the crop")
    p.add_argument("--tile", type=int, default=None, help="passed to the CLI as --tile")
    p.add_argument("--precisions", nargs="+", default=["auto", "fp32"], choices=PRECISIONS,
                   help="network arithmetic to time (passed to the CLI as --precision)")
    p.add_argument("--networks", nargs="+", default=["auto"], choices=NETWORKS,
                   help="shipped networks to time (passed to the CLI as --network)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per CLI run")
    p.add_argument("--repeat", type=int, default=1,
                   help="CLI runs per row: the table gives their median (a shared 2-core machine's timings "
                        "vary by ~20%% from run to run) and the range")


def synthetic_photo(mp: float, seed: int = 0) -> np.ndarray:
    """A clean photo-like float32 HxWx3 image (3:2) of ``mp`` megapixels: smooth shading, soft blobs,
    sharp-edged shapes and fine texture."""
    rng = np.random.default_rng(seed)
    w = int(round((mp * 1e6 * 1.5) ** 0.5))
    h = int(round(w / 1.5))
    sh, sw = max(4, h // 64), max(4, w // 64)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    low = np.empty((sh, sw, 3), np.float32)
    for c in range(3):
        low[..., c] = 0.25 + 0.35 * xx / sw + 0.2 * yy / sh * (0.5 + 0.25 * c)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, sh), rng.uniform(0, sw), rng.uniform(sh / 10, sh / 3)
        low += rng.uniform(-0.2, 0.2, 3).astype(np.float32) * np.exp(
            -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):  # hard edges
        col = tuple(float(v) for v in rng.uniform(0.05, 0.95, 3))
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (x0 + int(rng.uniform(w / 40, w / 6)), y0 + int(rng.uniform(h / 40, h / 6))),
                          col, -1, lineType=cv2.LINE_AA)
        else:
            cv2.circle(img, (x0, y0), int(rng.uniform(h / 80, h / 10)), col, -1, lineType=cv2.LINE_AA)
    tex = rng.standard_normal((h // 2, w // 2, 1), dtype=np.float32)
    tex = cv2.GaussianBlur(tex, (0, 0), 0.8)
    img += 0.04 * cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(img, 0.0, 1.0, out=img)


def add_noise_u8(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    noisy = clean * 255.0
    noisy += rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _write(path: Path, u8: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if not cv2.imwrite(str(path), np.ascontiguousarray(u8[..., ::-1]), params):
        raise OSError(f"could not write {path}")


def _parse_elapsed(text: str) -> float | None:
    m = re.search(r"Elapsed \(wall clock\) time[^:]*:\s*([\d:.]+)", text)
    if not m:
        return None
    secs = 0.0
    for part in m.group(1).split(":"):
        secs = secs * 60 + float(part)
    return secs


def precision_label(name: str, device: str) -> str:
    """'auto (bf16)': the option and what it resolves to on this machine."""
    dtype = resolve_precision(name, resolve_device(device))
    actual = {None: "fp32", **{v: k for k, v in DTYPES.items()}}[dtype]
    return f"{name} ({actual})" if name == "auto" else actual


def network_label(name: str, device: str) -> str:
    """'auto (standard)': the option and the network it picks on this machine."""
    actual = resolve_network(name, resolve_device(device))
    return f"{name} ({actual})" if name == "auto" else actual


def run_cli(img: Path, out_dir: Path, sigma: float, device: str, threads: int, tile: int | None,
            timeout: float, precision: str = "auto", network: str = "auto") -> dict:
    """Run ``python -m desktop_denoiser.cli denoise`` in a child process; wall seconds and peak RSS."""
    cmd = [sys.executable, "-m", "desktop_denoiser.cli", "denoise", str(img), "-o", str(out_dir),
           "--sigma", f"{sigma:g}", "--device", device, "--precision", precision, "--network", network,
           "--json", "--overwrite"]
    if tile:
        cmd += ["--tile", str(tile)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if threads > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    use_time = Path(TIME_BIN).exists()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(([TIME_BIN, "-v"] if use_time else []) + cmd, capture_output=True, text=True,
                          env=env, cwd=str(REPO_ROOT), timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"CLI failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss_kb = None
    if use_time:
        m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", proc.stderr)
        rss_kb = int(m.group(1)) if m else None
        wall = _parse_elapsed(proc.stderr) or wall
    else:  # max over all children so far: right as long as sizes grow
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rss_kb = after if after > before else None
    job = {}
    for line in proc.stdout.splitlines():
        try:
            job = json.loads(line)
        except ValueError:
            continue
    return {"wall_s": wall, "job_s": job.get("seconds"), "peak_rss_gb": rss_kb / 1024**2 if rss_kb else None,
            "steps": job.get("steps"), "command": " ".join(["python", *cmd[1:]])}


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the lower middle one for an even count), with the largest peak
    RSS of all and the wall times' range as text."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    walls = [r["wall_s"] for r in ordered]
    mid = dict(ordered[(len(ordered) - 1) // 2])
    rss = [r["peak_rss_gb"] for r in runs if r.get("peak_rss_gb") is not None]
    mid["peak_rss_gb"] = max(rss) if rss else None
    mid["wall_runs"] = walls
    mid["wall_range"] = f"{walls[0]:.1f}–{walls[-1]:.1f}"
    return mid


def run(args, ctx) -> dict:
    from ..core.metrics import psnr
    from ..core.sampler import run_to_end
    from ..pipeline.jobs import DenoiseOptions

    log = ctx.log
    rows, results, crop_result = [], [], None
    with tempfile.TemporaryDirectory(prefix="dd-bench-speed-") as tmp:
        tmp = Path(tmp)
        for k, mp in enumerate(args.mp):
            clean = synthetic_photo(mp, seed=k)
            noisy = add_noise_u8(clean, args.sigma, seed=k)
            h, w = noisy.shape[:2]
            real_mp = h * w / 1e6
            img = tmp / f"synthetic_{mp:g}mp.{args.format}"
            _write(img, noisy)
            if k == 0 and args.crop_mp > 0:
                crop_result = _crop_compare(args, ctx, clean, noisy, psnr, run_to_end, DenoiseOptions)
            del clean, noisy
            for network, precision in [(n, p) for n in args.networks for p in args.precisions]:
                label, nlabel = precision_label(precision, args.device), network_label(network, args.device)
                log(f"[speed] {w}x{h} ({real_mp:.1f} MP) {args.format}, {nlabel}, {label}: running the CLI ...")
                runs = [run_cli(img, tmp / "out", args.sigma, args.device, ctx.threads, args.tile, args.timeout,
                                precision, network) for _ in range(max(1, args.repeat))]
                r = median_run(runs)
                r.update({"mp": real_mp, "size": f"{w}×{h}", "mp_per_s": real_mp / r["wall_s"],
                          "precision": label, "network": nlabel})
                results.append(r)
                log(f"[speed] {real_mp:.1f} MP: {r['wall_s']:.1f} s wall, peak RSS {fmt(r['peak_rss_gb'])} GB")
                rows.append([f"{r['size']} ({real_mp:.1f} MP, {args.format.upper()})", nlabel, label,
                             fmt(r["wall_s"], 1), fmt(r["job_s"], 1), fmt(r["mp_per_s"], 3), fmt(r["peak_rss_gb"], 2)]
                            + ([r["wall_range"]] if args.repeat > 1 else []))
            for f in (img, tmp / "out" / img.name):
                f.unlink(missing_ok=True)
    cli = results[0]["command"].replace(str(tmp), "TMP") if results else ""
    md = ("### End to end (CLI, fidelity mode)\n\n"
          + table(["image", "network", "precision", "wall s (whole process)", "job s (read+denoise+write)", "MP/s (wall)",
                   "peak RSS (GB)"] + ([f"wall s of the {args.repeat} runs"] if args.repeat > 1 else []), rows)
          + f"\n\nEach row: `/usr/bin/time -v {cli}` in a fresh process (Python start-up, imports and model "
            f"loading included in wall s), σ={args.sigma:g}, synthetic photo-like image with Gaussian noise"
          + (f"; the median of {args.repeat} runs (peak RSS: their largest)." if args.repeat > 1 else "."))
    if crop_result:
        c = crop_result
        crows = [[name, fmt(v["seconds"], 2), fmt(v["mp_per_s"], 3), fmt(v["psnr"])] for name, v in c["methods"].items()]
        md += (f"\n\n### In-process, {c['size']} crop ({c['mp']:.2f} MP) of the first image\n\n"
               + table(["method", "seconds", "MP/s", "PSNR (dB, synthetic)"], crows))
        if c.get("speedup_vs_cbm3d"):
            md += f"\n\nSpeed ratio CBM3D s / ours s: **{c['speedup_vs_cbm3d']:.1f}×**."
    return {"runs": results, "crop": crop_result, "markdown": md}


def _crop_compare(args, ctx, clean, noisy_u8, psnr, run_to_end, DenoiseOptions) -> dict:
    h, w = noisy_u8.shape[:2]
    cw = min(w, int(round((args.crop_mp * 1e6 * 1.5) ** 0.5)))
    ch = min(h, int(round(cw / 1.5)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    y = noisy_u8[y0:y0 + ch, x0:x0 + cw].astype(np.float32) / 255.0
    c = clean[y0:y0 + ch, x0:x0 + cw].copy()
    mp = ch * cw / 1e6
    methods = {}
    for precision in args.precisions:
        opts = DenoiseOptions(sigma=args.sigma, mode="fidelity", device=ctx.device, precision=precision)
        with Timer() as t:
            den = run_to_end(ctx.denoiser.run(y, opts))
        name = "ours fidelity (σ known)" if precision == args.precisions[0] else \
            f"ours fidelity (σ known), {precision_label(precision, ctx.device)}"
        methods[name] = {"seconds": t.seconds, "mp_per_s": mp / t.seconds, "psnr": psnr(den.pixels, c)}
        ctx.log(f"[speed] crop {cw}x{ch}: ours {precision} {t.seconds:.2f} s")
    for peer in args.peers:
        with Timer() as t:
            den = peers_mod.run_peer(peer, y, args.sigma)
        label = {"cbm3d": "CBM3D (bm3d_rgb, σ known)", "nlm": "OpenCV NLM"}[peer]
        methods[label] = {"seconds": t.seconds, "mp_per_s": mp / t.seconds, "psnr": psnr(den, c)}
        ctx.log(f"[speed] crop: {peer} {t.seconds:.2f} s")
    ours_s = methods["ours fidelity (σ known)"]["seconds"]
    cb = methods.get("CBM3D (bm3d_rgb, σ known)")
    return {"size": f"{cw}×{ch}", "mp": mp, "methods": methods,
            "speedup_vs_cbm3d": cb["seconds"] / ours_s if cb else None}
