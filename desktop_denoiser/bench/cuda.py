"""``bench cuda``: the checks only a CUDA GPU can make.

1. **Precision**: PSNR of fp16 and bf16 autocast against float32 on the same 8-bit clipped noisy
   images (σ known, fidelity mode), and on real camera noise (PolyU pairs, blind camera-noise path).
   Issue #5 asks for fp16/bf16 on CUDA only if it keeps PSNR within 0.05 dB.
2. **Out-of-memory fallback** under a real allocator limit
   (``torch.cuda.set_per_process_memory_fraction``): the run must halve its tiles and finish with the
   same result, and below the smallest tile it must finish on the CPU, each with a warning.
3. **Throughput**: in-process MP/s and peak GPU memory on large synthetic photos.

With ``--device cpu`` (no GPU) it runs parts 1 and 3 on the CPU as a dry run of the script and leaves out 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .common import Timer, megapixels
from .report import fmt, table

PRECISION_SET = ("fp32", "fp16", "bf16")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="/work/shared/data/dev/CBSD68", help="folder of clean images (default %(default)s)")
    p.add_argument("--limit", type=int, default=8, help="images used from --data")
    p.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    p.add_argument("--real", default=None, help="folder of *_real / *_mean pairs (PolyU): the camera-noise path too")
    p.add_argument("--real-limit", type=int, default=6)
    p.add_argument("--mp", type=float, nargs="+", default=[12, 24], help="photo sizes timed (megapixels)")
    p.add_argument("--oom-mp", type=float, default=4.0, help="photo size (MP) of the out-of-memory check")
    p.add_argument("--oom-limit-mb", type=float, default=192.0,
                   help="GPU memory the first out-of-memory run may use (MiB; on an H200 a 4 MP photo in 2048 px "
                        "fp16 tiles peaked at 0.40 GB, so 512 MiB did not run out)")


def _run(denoiser, pixels, opts):
    from ..core.sampler import run_to_end

    return run_to_end(denoiser.run(pixels, opts))


def precision_check(args, ctx) -> dict:
    from ..core.metrics import add_gaussian_noise_8bit, psnr
    from ..pipeline.imageio import list_images, read_image
    from ..pipeline.jobs import DenoiseOptions
    from .awgn import seed_for
    from .real import find_pairs

    files = list_images(args.data)[: args.limit]
    if not files:
        raise FileNotFoundError(f"no images in {args.data}")
    cleans = [read_image(f).pixels for f in files]
    sets: list[tuple[str, list[tuple[np.ndarray, np.ndarray]], dict]] = [
        (f"σ={s:g}", [(add_gaussian_noise_8bit(c, s, seed=seed_for(i, s)), c) for i, c in enumerate(cleans)],
         {"sigma": float(s)}) for s in args.sigmas]
    if args.real:
        real = [(read_image(n).pixels, read_image(c).pixels) for n, c in find_pairs(Path(args.real))[: args.real_limit]]
        if real:
            sets.append((f"PolyU camera noise ({len(real)} pairs, blind)", real, {}))
    res: dict = {}
    for label, pairs, kw in sets:
        row = {}
        for prec in PRECISION_SET:
            vals, secs = [], 0.0
            for noisy, clean in pairs:
                with Timer() as t:
                    out = _run(ctx.denoiser, noisy, DenoiseOptions(device=ctx.device, precision=prec, **kw))
                secs += t.seconds
                vals.append(psnr(out.pixels, clean))
            row[prec] = {"psnr": float(np.mean(vals)), "seconds": secs / len(pairs)}
            ctx.log(f"[cuda] {label} {prec}: {row[prec]['psnr']:.3f} dB, {row[prec]['seconds']:.3f} s/image")
        res[label] = row
    return res


def oom_check(args, ctx) -> dict:
    """Real CUDA out-of-memory errors: a capped allocator first forces smaller tiles, then the CPU."""
    from ..core.metrics import psnr
    from ..pipeline.jobs import DenoiseOptions
    from .speed import add_noise_u8, synthetic_photo

    dev = torch.device(ctx.device)
    total = torch.cuda.get_device_properties(dev).total_memory
    noisy = add_noise_u8(synthetic_photo(args.oom_mp), 25.0, seed=7).astype(np.float32) / 255.0
    small = np.ascontiguousarray(noisy[:768, :1024])
    opts = DenoiseOptions(sigma=25.0, device=ctx.device, tile=2048)
    reference = _run(ctx.denoiser, noisy, opts)
    small_ref = _run(ctx.denoiser, small, opts)
    out: dict = {}
    try:
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.oom_limit_mb * 2**20 / total), dev)
        torch.cuda.reset_peak_memory_stats(dev)
        capped = _run(ctx.denoiser, noisy, opts)
        out["halve"] = {"warnings": capped.warnings, "device": capped.device,
                        "peak_gb": torch.cuda.max_memory_allocated(dev) / 1e9,
                        "max_abs_diff": float(np.abs(capped.pixels - reference.pixels).max()),
                        "psnr_vs_uncapped": psnr(capped.pixels, reference.pixels), "mp": megapixels(noisy)}
        torch.cuda.empty_cache()
        # room for what is already allocated (the weights) and almost nothing more
        torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_allocated(dev) + 2**20) / total), dev)
        starved = _run(ctx.denoiser, small, opts)
        out["cpu"] = {"warnings": starved.warnings, "device": starved.device,
                      "max_abs_diff": float(np.abs(starved.pixels - small_ref.pixels).max()),
                      "psnr_vs_uncapped": psnr(starved.pixels, small_ref.pixels), "mp": megapixels(small)}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
        torch.cuda.empty_cache()
    for k, v in out.items():
        ctx.log(f"[cuda] oom {k}: {v}")
    return out


def speed_check(args, ctx) -> list[dict]:
    from ..pipeline.jobs import DenoiseOptions
    from .speed import add_noise_u8, synthetic_photo

    rows = []
    cuda = ctx.device.startswith("cuda")
    for k, mp in enumerate(args.mp):
        noisy = add_noise_u8(synthetic_photo(mp, seed=k), 25.0, seed=k).astype(np.float32) / 255.0
        for prec in ("auto", "fp32"):
            opts = DenoiseOptions(sigma=25.0, device=ctx.device, precision=prec)
            if cuda:  # untimed warm-up: a first run pays one-off costs (kernel loading, new tile shapes);
                _run(ctx.denoiser, noisy, opts)  # on an H100 a cold 12 MP fp16 run took 2.45 s, fp32 after it 0.73 s
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            with Timer() as t:
                res = _run(ctx.denoiser, noisy, opts)
            peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
            rows.append({"mp": megapixels(noisy), "precision": prec, "seconds": t.seconds,
                         "mp_per_s": megapixels(noisy) / t.seconds, "peak_gpu_gb": peak, "device": res.device})
            ctx.log(f"[cuda] speed {megapixels(noisy):.1f} MP {prec}: {t.seconds:.2f} s")
        del noisy
    return rows


def run(args, ctx) -> dict:
    cuda = ctx.device.startswith("cuda")
    if cuda:
        name = torch.cuda.get_device_name(torch.device(ctx.device))
    else:
        name = "no CUDA GPU: dry run on the CPU (out-of-memory check left out)"
    prec = precision_check(args, ctx)
    try:
        oom = oom_check(args, ctx) if cuda else {}
    except Exception as exc:  # a failed check is a result to report, not a reason to lose the others
        oom = {"failed": {"warnings": [f"{type(exc).__name__}: {exc}"], "device": "–", "max_abs_diff": None,
                          "psnr_vs_uncapped": None, "mp": args.oom_mp}}
    speed = speed_check(args, ctx)

    md = [f"GPU: {name}, torch {torch.__version__}.\n\n### Precision (PSNR dB; fidelity mode; σ known for AWGN)\n"]
    rows = []
    for label, r in prec.items():
        base = r["fp32"]["psnr"]
        rows.append([label] + [fmt(r[p]["psnr"], 3) + ("" if p == "fp32" else f" ({r[p]['psnr'] - base:+.3f})")
                               for p in PRECISION_SET] + [fmt(r[p]["seconds"], 3) for p in PRECISION_SET])
    md.append(table(["noise", *PRECISION_SET, *(f"s/image {p}" for p in PRECISION_SET)], rows))
    md.append(f"\n{args.limit} images of `{Path(args.data).name}`, 8-bit clipped noise; `--precision auto` is fp16 on CUDA.")
    if oom:
        md.append("\n### Out-of-memory fallback (real `torch.cuda.OutOfMemoryError` under a capped allocator)\n")
        orows = []
        for k, v in oom.items():
            what = {"halve": f"{v['mp']:.1f} MP, 2048 px tiles, capped at {args.oom_limit_mb:g} MiB",
                    "cpu": f"{v['mp']:.2f} MP, capped at the weights + 1 MiB"}.get(k, f"check FAILED ({k})")
            orows.append([what, "; ".join(v["warnings"]) or "none", v["device"], fmt(v["max_abs_diff"], 4),
                          fmt(v["psnr_vs_uncapped"])])
        md.append(table(["run", "warnings", "finished on", "max |diff| vs uncapped", "PSNR vs uncapped"], orows,
                        align="llllr"))
    md.append("\n### Throughput (in-process, fidelity mode, σ=25, model already loaded)\n")
    md.append(table(["image", "precision", "seconds", "MP/s", "peak GPU GB"],
                    [[f"{r['mp']:.1f} MP", r["precision"], fmt(r["seconds"], 2), fmt(r["mp_per_s"], 1),
                      fmt(r["peak_gpu_gb"], 2)] for r in speed]))
    return {"section": "cuda", "precision": prec, "oom": oom, "speed": speed, "gpu": name,
            "markdown": "\n".join(md)}
