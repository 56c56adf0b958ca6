"""PySide6 desktop GUI. The only package that imports Qt; it builds on ``pipeline`` and ``core``."""
