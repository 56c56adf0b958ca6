"""Qt-free DDPM core: schedules, forward/posterior, U-Net, reverse-process generator, tiling,
noise estimation, checkpoints and training. Never imports PySide6."""
