"""Desktop Denoiser: clean noisy photos with a Denoising Diffusion Probabilistic Model (DDPM).

Layers (imports point one way): ``desktop_denoiser.qt`` (the only place that imports PySide6)
-> ``desktop_denoiser.pipeline`` (files, folders, devices, jobs) -> ``desktop_denoiser.core``
(torch/numpy DDPM: schedule, diffusion, U-Net, sampler, tiling, noise estimation, checkpoint, training).
"""

__version__ = "0.1.0"
