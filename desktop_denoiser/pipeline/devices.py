"""Compute devices: what is available, resolving a user's choice, and a tile size that fits memory."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.precision import DTYPES, cpu_has_fast_bf16


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cpu", "cuda:0", "mps"
    label: str  # human readable


def available_devices() -> list[DeviceInfo]:
    """CPU first, then every CUDA GPU, then Apple MPS if present."""
    out = [DeviceInfo("cpu", "CPU")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append(DeviceInfo(f"cuda:{i}", f"CUDA {i}: {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    return out


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> first CUDA GPU, else CPU. Raises DeviceError for a device this machine lacks."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but no CUDA GPU is available here; use --device cpu or auto")
        dev = torch.device(name if ":" in name else "cuda:0")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"{name} does not exist; this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return dev
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("Apple MPS was requested but is not available here")
        return torch.device("mps")
    raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")


# Peak bytes of activations per pixel of a tile for the shipped U-Net (float32, batch 1): measured
# 250-400 B/px for 1536..512 px tiles on the CPU; 400 leaves a margin.
_BYTES_PER_PIXEL = 400
# On the CPU the whole photo's buffers (a few float32 copies) also live in RAM: keep the tile's share
# at 1 GiB so a 24-megapixel photo stays under ~3 GB peak.
_CPU_TILE_BUDGET = 1 << 30
# ... and at most 1024 px: bigger tiles' activations fall out of the CPU's caches. Measured on a 2-core
# AMD EPYC (bf16, 2 threads), one forward pass ran at 1.72-1.77 MP/s for 256-1024 px tiles, 1.52 at 1536
# and 1.44 at 2048; a 12 MP photo took 11.6-11.8 s end to end with 1024 px tiles, 12.1 s with 1280 and
# 12.7-12.9 s with the 1600 px tiles the 1 GiB budget allows (smaller tiles spend more on margins).
_CPU_TILE_MAX = 1024


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(name: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``device`` (None = float32). ``auto``: fp16 on CUDA, bf16 on CPUs with
    native bf16, float32 otherwise. Measured on CBSD68 photos: bf16 -0.01 to -0.03 dB, fp16 (emulated on
    the CPU) within 0.001 dB of float32 (benchmarks/RESULTS.md)."""
    name = (name or "auto").strip().lower()
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    if name == "auto":
        if device.type == "cuda":
            name = "fp16"
        elif device.type == "cpu" and cpu_has_fast_bf16():
            name = "bf16"
        else:
            name = "fp32"
    return None if name == "fp32" else DTYPES[name]


def default_tile_size(device: torch.device, fraction: float = 0.5, lo: int = 256, hi: int = 2048) -> int:
    """Largest tile (multiple of 64) whose activations fit ``fraction`` of the free memory on ``device``
    (on the CPU also at most 1 GiB and 1024 px, the fastest there). Bigger tiles waste less time on the
    overlapping context margins."""
    if device.type == "cuda":
        budget = torch.cuda.mem_get_info(device)[0] * fraction
    else:
        budget = min(_cpu_available_bytes() * fraction, _CPU_TILE_BUDGET)
        hi = min(hi, _CPU_TILE_MAX)
    side = int((budget / _BYTES_PER_PIXEL) ** 0.5) // 64 * 64
    return max(lo, min(hi, side))


def _cpu_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


NETWORKS = ("auto", "standard", "fast", "camera")


def resolve_network(name: str | None, device: torch.device | str, *, camera_noise: bool = False) -> str:
    """Which shipped network runs: ``standard`` (6.0 M parameters), ``fast`` (2.8 M, 0.26-0.28 dB lower on
    CBSD68 white noise, 2.2x the speed) or ``camera`` (the fast one fine-tuned on simulated camera noise:
    core/camera_sim.py; models/README.md). ``auto`` takes

    * the camera network for camera noise (``camera_noise``: the run takes the real-noise path), where
      it beats the white-noise networks (PolyU; benchmarks/RESULTS.md) at the fast one's speed;
    * the fast one on CPUs without native bf16 (no AVX512-BF16 or AMX, e.g. many laptop CPUs), where the
      standard one computes in float32 at ~0.3 MP/s (a 12 MP photo in 40.6 s on 2 cores, the fast one
      18.3 s; benchmarks/RESULTS.md, speed section);
    * the standard one everywhere else.

    A network named explicitly runs for every photo (the camera network on white noise too)."""
    name = (name or "auto").strip().lower()
    if name not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {name!r}")
    if name == "auto":
        if camera_noise:
            return "camera"
        slow_cpu = torch.device(device).type == "cpu" and not cpu_has_fast_bf16()
        return "fast" if slow_cpu else "standard"
    return name


def auto_network_label(device: torch.device | str = "cpu") -> str:
    """What ``network="auto"`` picks on ``device``, in words (the GUI shows it)."""
    return f"{resolve_network('auto', device)}; camera for camera noise"
