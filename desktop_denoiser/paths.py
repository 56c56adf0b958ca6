"""Where bundled data lives: ``models/`` and ``resources/`` at the repository root in a checkout, or
``desktop_denoiser/_data/`` inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
DEFAULT_MODEL_NAME = "ddpm_denoiser.safetensors"
# the smaller network for camera noise and CPUs without native bf16 (pipeline.devices.resolve_network)
FAST_MODEL_NAME = "ddpm_denoiser_fast.safetensors"


def _data_dir(name: str) -> Path:
    installed = _PKG / "_data" / name
    if installed.is_dir():
        return installed
    return _PKG.parent / name


def models_dir() -> Path:
    return _data_dir("models")


def resources_dir() -> Path:
    return _data_dir("resources")


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def fast_model_path() -> Path:
    return models_dir() / FAST_MODEL_NAME


def resource(name: str) -> Path:
    return resources_dir() / name
