"""Benchmarks of Desktop Denoiser against classical peers (Qt-free).

``main(["awgn" | "real" | "speed" | "cuda" | "train", ...])`` -- also reachable as ``desktop-denoiser-cli bench ...`` and
``python benchmarks/bench_*.py``. Each prints a markdown report; ``--write`` puts it into its section of
``benchmarks/RESULTS.md`` (or ``--results PATH``) and ``--json PATH`` saves the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["main", "build_parser"]


@dataclass
class Context:
    denoiser: object
    device: str
    threads: int
    model_hash: str
    cache: object
    log: Callable[[str], None]
    code_hash: str = ""

    @property
    def ours_key(self) -> str:
        """The part of a cache key that names what produced "ours": model file and inference code."""
        return f"model={self.model_hash}|code={self.code_hash}"


def _common(p: argparse.ArgumentParser, device_default: str) -> None:
    from .report import DEFAULT_RESULTS

    g = p.add_argument_group("common")
    g.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch/OpenCV/BLAS (default 1, the fair setting vs single-threaded "
                        "CBM3D; 0 = library defaults)")
    g.add_argument("--device", default=device_default, help=f"device for ours (default {device_default})")
    g.add_argument("--model", default=None,
                   help="model file for every run (default: the bundled standard network); 'shipped': the app's "
                        "networks, chosen per photo as DenoiseOptions.network (--opt network=..., default auto) "
                        "says (auto depends on the CPU: see the machine line); bench speed's CLI rows run "
                        "the networks of --networks, only its in-process crop this file")
    g.add_argument("--write", action="store_true", help="update this benchmark's section of the results file")
    g.add_argument("--results", default=str(DEFAULT_RESULTS), help="results markdown file (default %(default)s)")
    g.add_argument("--json", default=None, metavar="PATH", help="also write the numbers as JSON")
    g.add_argument("--cache", default=None, metavar="PATH",
                   help="JSON-lines file of per-image results: reused when present, so long runs can resume")
    g.add_argument("--quiet", action="store_true", help="no per-image progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    from . import awgn, cuda, real, speed, train

    p = argparse.ArgumentParser(prog="desktop-denoiser-cli bench",
                                description="Benchmark Desktop Denoiser against CBM3D and OpenCV NLM.")
    sub = p.add_subparsers(dest="bench", required=True)
    a = sub.add_parser("awgn", help="synthetic Gaussian noise on clean images (PSNR/SSIM/speed)")
    awgn.add_arguments(a)
    _common(a, "auto")
    r = sub.add_parser("real", help="real camera noise (PolyU Canon 5D2 pairs)")
    real.add_arguments(r)
    _common(r, "auto")
    s = sub.add_parser("speed", help="end-to-end CLI throughput and peak memory on large images")
    speed.add_arguments(s)
    _common(s, "cpu")
    c = sub.add_parser("cuda", help="GPU checks: fp16/bf16 vs fp32 PSNR, out-of-memory fallback, throughput")
    cuda.add_arguments(c)
    _common(c, "auto")
    t = sub.add_parser("train", help="training throughput (steps/s), plain vs torch.compile'd training step")
    train.add_arguments(t)
    _common(t, "auto")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    from . import awgn, cuda, real, speed, train
    from .common import ResultCache, code_hash, file_sha256, machine_info, model_info, set_threads
    from .peers import have_bm3d
    from .report import command_line, provenance, update_section

    threads = set_threads(args.threads)
    if "cbm3d" in getattr(args, "peers", []) and not have_bm3d():
        print("error: the cbm3d peer needs the 'bm3d' package (pip install bm3d, or pip install -e '.[bench]'); "
              "or leave it out with --peers nlm", file=sys.stderr)
        return 2

    import numpy as np

    from ..core.sampler import run_to_end
    from ..pipeline.devices import DeviceError, resolve_device
    from ..pipeline.jobs import DenoiseOptions, Denoiser

    try:
        device = str(resolve_device(args.device))
    except DeviceError as exc:  # as denoise and train refuse it: one line, nothing run
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ..paths import default_model_path

    # one named file for every run (the app's auto choice of network would vary with the CPU), unless
    # "shipped" asks for the app's own choice
    if args.model == "shipped":
        denoiser = Denoiser()
        files = denoiser.model_paths
        models = "; ".join(f"{name}: " + model_info(path, denoiser.model("cpu", name).info)
                           for name, path in files.items())
        model_hash = "+".join(file_sha256(path) for path in files.values())
    else:
        denoiser = Denoiser(args.model or default_model_path())
        models = model_info(denoiser.model_path, denoiser.model("cpu").info)
        model_hash = file_sha256(denoiser.model_path)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    ctx = Context(denoiser, device, threads, model_hash, ResultCache(args.cache), log, code_hash())
    # warm-up: load the model on the device and initialise the kernels before anything is timed
    warm = np.full((64, 64, 3), 0.5, np.float32)
    run_to_end(denoiser.run(warm, DenoiseOptions(sigma=25.0, device=device)))

    from ..pipeline.imageio import ImageReadError

    module = {"awgn": awgn, "real": real, "speed": speed, "cuda": cuda, "train": train}[args.bench]
    try:
        result = module.run(args, ctx)
    except (FileNotFoundError, ValueError, ImageReadError) as exc:  # bad folders or options: a clear message
        print(f"error: {exc}", file=sys.stderr)
        return 2
    extra = [f"{ctx.cache.hits} per-image results reused from cache {args.cache}"] if ctx.cache.hits else []
    md = provenance(command_line(argv), machine_info(threads, device),
                    models, extra) + "\n\n" + result["markdown"]
    print(md)
    if args.json:
        data = {k: v for k, v in result.items() if k != "markdown"}
        data["command"] = command_line(argv)
        Path(args.json).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    if args.write:
        section = result.get("section", args.bench)
        path = update_section(args.results, section, md)
        print(f"\nupdated the '{section}' section of {path}", file=sys.stderr)
    return 0
