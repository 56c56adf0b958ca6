"""``python -m desktop_denoiser`` starts the desktop GUI."""

from desktop_denoiser.qt.app import main

raise SystemExit(main())
