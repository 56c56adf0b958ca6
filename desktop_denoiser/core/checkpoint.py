"""Model checkpoints: safetensors weights + metadata that carries the U-Net config and the schedule.

A shipped model file is self-describing: ``load_model(path)`` rebuilds the exact architecture and noise
schedule from the metadata, never from the file name. Only tensors are deserialised (safetensors), so a
checkpoint can't run code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import save_file

from .schedule import NoiseSchedule, ScheduleConfig
from .unet import UNet, UNetConfig

FORMAT_NAME = "desktop-denoiser-ddpm"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A model file that is missing, corrupt, or not a Desktop Denoiser checkpoint."""


@dataclass
class LoadedModel:
    model: UNet
    schedule: NoiseSchedule
    info: dict = field(default_factory=dict)  # training facts (steps, data, ...)
    path: Path | None = None


def save_model(path: str | Path, model: UNet, schedule_config: ScheduleConfig, info: dict | None = None) -> Path:
    """Write ``model``'s weights with its config, schedule and ``info`` as metadata (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT_NAME,
        "version": str(FORMAT_VERSION),
        "model_config": json.dumps(model.config.to_dict()),
        "schedule": json.dumps(schedule_config.to_dict()),
        "info": json.dumps(info or {}),
    }
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file left beside the target
        raise
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the U-Net and schedule stored in ``path`` (eval mode, on ``device``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name} is not a readable safetensors model file ({exc})") from exc
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path.name} is not a Desktop Denoiser model (format={metadata.get('format')!r})")
    try:
        version = int(metadata.get("version", "0"))
    except ValueError:
        version = -1
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path.name} has model format version {metadata.get('version')!r}; "
                              f"this program reads version {FORMAT_VERSION}")
    try:
        config = UNetConfig.from_dict(json.loads(metadata["model_config"]))
        schedule = NoiseSchedule(ScheduleConfig.from_dict(json.loads(metadata["schedule"])))
        info = json.loads(metadata.get("info", "{}"))
        model = UNet(config, alphas_cumprod=schedule.alphas_cumprod)
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name}: model config and weights do not match ({exc})") from exc
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(model=model, schedule=schedule, info=info, path=path)
