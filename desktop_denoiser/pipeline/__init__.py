"""Qt-free pipeline: image files, folders, devices and denoising jobs, shared by the GUI and the CLI."""
