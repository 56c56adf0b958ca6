"""Turn exceptions into plain-language messages for dialogs and the status bar."""

from __future__ import annotations

import logging

log = logging.getLogger("desktop_denoiser.qt")


def describe_error(exc: BaseException, action: str = "") -> str:
    """A short message a photographer can act on; unexpected errors also get logged with a traceback."""
    from ..core.checkpoint import CheckpointError
    from ..core.noise_estimation import NoiseEstimationError
    from ..pipeline.devices import DeviceError
    from ..pipeline.imageio import ImageReadError, ImageWriteError

    prefix = f"{action}: " if action else ""
    if isinstance(exc, (ImageReadError, ImageWriteError, DeviceError)):
        return prefix + str(exc)
    if isinstance(exc, CheckpointError):
        return (prefix + f"the denoising model could not be loaded ({exc}). "
                "Reinstall Desktop Denoiser or put the model file back in the models folder.")
    if isinstance(exc, NoiseEstimationError):
        return prefix + f"the noise level could not be estimated: {exc}. Tick “Set σ manually” to denoise it."
    if _is_out_of_memory(exc):
        return (prefix + "there is not enough memory to denoise this image. Close other programs, "
                "choose the CPU as device, or try a smaller image.")
    if isinstance(exc, (FileNotFoundError, PermissionError, ValueError)):
        return prefix + (str(exc) or type(exc).__name__)
    log.error("unexpected error%s", f" ({action})" if action else "", exc_info=exc)
    return prefix + f"an unexpected error happened ({type(exc).__name__}: {exc}). Details are in the log."


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except Exception:  # pragma: no cover - torch always present in practice
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
