"""Where bundled data lives: ``models/`` and ``resources/`` at the repository root in a checkout, or
``desktop_denoiser/_data/`` inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
DEFAULT_MODEL_NAME = "ddpm_denoiser.safetensors"
# the smaller network for CPUs without native bf16 (pipeline.devices.resolve_network)
FAST_MODEL_NAME = "ddpm_denoiser_fast.safetensors"
# the fast network fine-tuned on simulated camera noise, for the camera-noise path
CAMERA_MODEL_NAME = "ddpm_denoiser_camera.safetensors"


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


def camera_model_path() -> Path:
    return models_dir() / CAMERA_MODEL_NAME


def network_model_paths(model_path: Path | None = None) -> dict[str, Path]:
    """The weights file of each shipped network (``pipeline.devices.NETWORKS`` less ``auto``). A missing
    file falls back to the next more general network: camera -> fast -> standard. ``model_path`` given:
    that one file for every network (benchmarks and tests measure one file)."""
    if model_path is not None:
        return {"standard": model_path, "fast": model_path, "camera": model_path}
    paths = {"standard": default_model_path()}
    paths["fast"] = fast_model_path() if fast_model_path().is_file() else paths["standard"]
    paths["camera"] = camera_model_path() if camera_model_path().is_file() else paths["fast"]
    return paths


def resource(name: str) -> Path:
    return resources_dir() / name
