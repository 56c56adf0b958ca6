"""Shared helpers of the benchmarks: threads, machine and model facts, image lists, timing."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def set_threads(n: int) -> int:
    """Limit torch, OpenCV and (for child processes, and libraries not yet started) OpenMP/BLAS to ``n``
    threads; ``n <= 0`` keeps the library defaults. Returns torch's thread count afterwards."""
    import cv2
    import torch

    if n > 0:
        torch.set_num_threads(n)
        cv2.setNumThreads(n)
        for var in _THREAD_VARS:
            os.environ[var] = str(n)
        try:  # optional: also limit BLAS pools already started in this process
            from threadpoolctl import threadpool_limits

            threadpool_limits(n)
        except ImportError:
            pass
    return torch.get_num_threads()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info(threads: int, device: str = "cpu") -> str:
    import torch

    parts = [f"{cpu_model()} ({os.cpu_count()} logical cores)", f"{threads} thread(s)",
             f"{platform.system()} {platform.release()}", f"Python {platform.python_version()}",
             f"torch {torch.__version__}"]
    if device.startswith("cuda") and torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(torch.device(device))}")
    else:  # what "auto" picks here (precision, network) follows from it
        from ..core.precision import cpu_has_fast_bf16

        parts.append("native bf16: " + ("yes (auto: bf16, standard network)" if cpu_has_fast_bf16()
                                        else "no (auto: float32, fast network)"))
    parts.append(f"device {device}")
    return ", ".join(parts)


def file_sha256(path: Path, n: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


# The modules whose code decides what "ours" returns for a given model file: cached per-image results
# are keyed by their code too, so a changed sampler or noise analysis is measured afresh instead of
# silently reusing numbers of the old code. Docstrings and comments do not count.
INFERENCE_MODULES = ("core/checkpoint.py", "core/denoise.py", "core/diffusion.py", "core/metrics.py",
                     "core/noise_analysis.py", "core/noise_estimation.py", "core/precision.py",
                     "core/real_noise.py", "core/sampler.py", "core/schedule.py", "core/tiling.py", "core/unet.py",
                     "pipeline/devices.py", "pipeline/imageio", "pipeline/jobs.py")


def code_hash(modules: Sequence[str] = INFERENCE_MODULES, root: Path | None = None, n: int = 12) -> str:
    """sha256 of the modules' syntax trees without docstrings (``root``: the package folder; a folder in
    ``modules`` stands for its ``*.py`` files)."""
    import ast

    root = Path(root) if root else Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = []
    for name in modules:
        path = root / name
        files += [f"{name}/{f.name}" for f in sorted(path.glob("*.py"))] if path.is_dir() else [name]
    for name in files:
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(name.encode() + b"\0" + ast.dump(tree).encode())
    return h.hexdigest()[:n]


def model_info(path: Path, info: dict) -> str:
    path = Path(path)
    st = path.stat()
    mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime))
    steps = info.get("steps", "?")
    return (f"`{path.name}` ({st.st_size / 1e6:.1f} MB, sha256 {file_sha256(path)}, modified {mtime}), "
            f"trained {steps} steps")


def megapixels(img: np.ndarray) -> float:
    return img.shape[0] * img.shape[1] / 1e6


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


@dataclass
class Acc:
    """Per-method accumulator: PSNR/SSIM lists, total seconds and megapixels."""

    psnr: list = field(default_factory=list)
    ssim: list = field(default_factory=list)
    seconds: float = 0.0
    mp: float = 0.0

    def add(self, psnr: float, ssim: float | None, seconds: float | None, mp: float) -> None:
        self.psnr.append(float(psnr))
        if ssim is not None:
            self.ssim.append(float(ssim))
        if seconds is not None:
            self.seconds += float(seconds)
            self.mp += mp

    def summary(self) -> dict:
        n = len(self.psnr)
        timed = self.seconds > 0
        return {
            "n": n,
            "psnr": float(np.mean(self.psnr)) if n else float("nan"),
            "ssim": float(np.mean(self.ssim)) if self.ssim else float("nan"),
            "s_per_img": self.seconds / n if (n and timed) else None,
            "mp_per_s": self.mp / self.seconds if timed else None,
        }


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (a size or a time)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def parse_opts(pairs: Sequence[str] | None) -> dict:
    """``["key=value", ...]`` -> DenoiseOptions field overrides (values parsed as Python literals, else
    strings; ``none`` -> None, ``true``/``false`` -> bool). Unknown fields raise ValueError."""
    import ast
    import dataclasses

    from ..pipeline.jobs import DenoiseOptions

    known = {f.name for f in dataclasses.fields(DenoiseOptions)}
    out: dict = {}
    for kv in pairs or ():
        key, eq, raw = kv.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            raise ValueError(f"--opt expects key=value, got {kv!r}")
        if key not in known:
            raise ValueError(f"DenoiseOptions has no field {key!r} (fields: {', '.join(sorted(known))})")
        low = raw.strip().lower()
        if low in ("none", "null"):
            value = None
        elif low in ("true", "false"):
            value = low == "true"
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        out[key] = value
    return out


class ResultCache:
    """Per-image results in a JSON-lines file, so a long benchmark can be split into runs and resumed.
    Keys carry everything a result depends on (image, sigma, seed, method settings, model hash, inference code hash)."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = Path(path) if path else None
        self.data: dict[str, dict] = {}
        self.hits = 0
        if self.path and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    self.data[rec["key"]] = rec
                except (ValueError, KeyError, TypeError):
                    continue

    def get(self, key: str) -> dict | None:
        rec = self.data.get(key)
        if rec is not None:
            self.hits += 1
        return rec

    def put(self, key: str, rec: dict) -> None:
        rec = {"key": key, **rec}
        self.data[key] = rec
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    def measure(self, key: str, clean: np.ndarray, denoise) -> dict:
        """The cached result for ``key``, or run ``denoise()`` (timed) and score it against ``clean``."""
        rec = self.get(key)
        if rec is None:
            from ..core.metrics import psnr, ssim

            with Timer() as t:
                den = denoise()
            rec = {"psnr": psnr(den, clean), "ssim": ssim(den, clean), "seconds": t.seconds}
            self.put(key, rec)
        return rec


STANDARD_HELP = ("the standard network's weights file for this run (e.g. a training checkpoint); the fast and "
                 "camera networks stay the shipped ones, so Auto's camera-noise path is the app's")


def app_denoiser(standard: str | Path | None = None):
    """The app's :class:`~desktop_denoiser.pipeline.jobs.Denoiser`, with ``standard`` in place of the shipped
    standard network if given (``--standard FILE`` of the stand-alone benchmark scripts)."""
    from ..pipeline.jobs import Denoiser

    d = Denoiser()
    if standard is not None:
        path = Path(standard)
        if not path.is_file():
            raise FileNotFoundError(f"--standard: no such file: {path}")
        d.model_paths["standard"] = d.model_path = path
    return d


def grey_photo(path: str | Path) -> np.ndarray:
    """The photo at ``path`` as 8-bit grey (float HxW in [0, 1]): BT.601 luma, the weights of the grey
    training samples (``train --grey-prob``)."""
    from ..core.metrics import LUMA_WEIGHTS
    from ..pipeline.imageio import read_image

    rgb = read_image(path).pixels[..., :3].astype(np.float32)
    return (np.round(rgb @ np.array(LUMA_WEIGHTS, np.float32) * 255) / 255).astype(np.float32)


@contextmanager
def rule_set(module, name: str, value):
    """``module.name`` set to ``value`` inside the block and put back after it: a benchmark's "before" run
    with one of the noise analysis's rules switched off (e.g. its threshold at infinity)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)

