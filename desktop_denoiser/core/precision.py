"""Network arithmetic: autocast (bf16/fp16) with channels-last inputs, and which CPUs run bf16 natively.

For inference the caller picks the dtype (``pipeline/devices.py: resolve_precision`` knows which one a
device runs fast and accurately); ``None`` or float32 means plain float32. The wrapped function always
returns float32, so the reverse process and tile blending stay in full precision. Training uses
:func:`cpu_has_fast_bf16` too (``TrainConfig.precision``).
"""

from __future__ import annotations

from typing import Callable

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: oneDNN runs bf16 convolutions natively (elsewhere bf16 is emulated, slowly)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # private probes: never let them break inference
            pass
    return False


def with_precision(model: Callable, device: torch.device | str, dtype: torch.dtype | None) -> Callable:
    """``model(x, t)`` evaluated in ``dtype`` (autocast) on ``device``; inputs are made channels-last
    (oneDNN's and cuDNN's fastest layout for convolutions; a measured 5-10 % on the CPU)."""
    device = torch.device(device)

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if dtype is None or dtype == torch.float32:
            return model(x, t).float()
        with torch.autocast(device.type, dtype=dtype):
            return model(x, t).float()

    return fn
