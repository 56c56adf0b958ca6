"""Host-to-device copies that do not stall a training loop.

A copy from ordinary (pageable) host memory to a CUDA device makes the host wait until the GPU has
finished everything queued before it, so every small per-step tensor copied that way (timesteps,
masks, augmentation parameters) lets the GPU run dry while Python prepares the next step. Copies from
pinned memory with ``non_blocking=True`` are queued like kernels instead; PyTorch's pinned-memory
allocator keeps the source alive until the copy has run.
"""

from __future__ import annotations

import torch


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device``: queued from pinned memory when the device is a GPU, a plain copy otherwise."""
    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)
