"""Icons from ``resources/icons`` (SVG, so they stay sharp on high-DPI screens)."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon

from ..paths import resource


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """``icon("open")`` -> resources/icons/open.svg; an empty icon if the file is missing."""
    path = resource(f"icons/{name}.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


def app_icon() -> QIcon:
    return icon("app")
