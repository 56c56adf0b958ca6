"""A Linux desktop entry (freedesktop.org / XDG): Desktop Denoiser in the applications menu and in file
managers' *Open with* for photos. ``desktop-denoiser-cli desktop-entry`` writes it for the current user
(``--remove`` takes it away); nothing is written anywhere else and nothing needs administrator rights."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .paths import resources_dir

ENTRY_NAME = "desktop-denoiser.desktop"
ICON_NAME = "desktop-denoiser"
# what the app opens (pipeline/imageio: SUPPORTED_SUFFIXES), as MIME types
MIME_TYPES = ("image/jpeg", "image/png", "image/tiff", "image/webp", "image/bmp")


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launch_command() -> list[str]:
    """How the desktop starts the app: the installed ``desktop-denoiser`` script beside this Python, else
    this Python running the app's module (a checkout)."""
    script = Path(sys.executable).with_name("desktop-denoiser")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("desktop-denoiser")
    return [found] if found else [sys.executable, "-m", "desktop_denoiser.qt.app"]


def _exec_arg(arg: str) -> str:
    """One Exec argument, quoted as the Desktop Entry Specification asks when it holds reserved characters."""
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`%'):
        return arg
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg).replace("%", "%%") + '"'


def entry_text(command: list[str], icon: str = ICON_NAME) -> str:
    """The .desktop file: ``command`` with the photos chosen (%F: one photo opens, several make a batch)."""
    # the key file's own string escape comes on top of Exec's quoting: each backslash is written twice
    exec_line = (" ".join(_exec_arg(a) for a in command) + " %F").replace("\\", "\\\\")
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        "Name=Desktop Denoiser",
        "GenericName=Photo Denoiser",
        "Comment=Remove noise from photos with a diffusion model, on your own computer",
        f"Exec={exec_line}",
        f"TryExec={command[0]}",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Graphics;Photography;RasterGraphics;",
        f"MimeType={';'.join(MIME_TYPES)};",
        "Keywords=denoise;noise;grain;photo;ISO;",
        "StartupNotify=true",
        "",
    ])


def entry_paths(home: Path | None = None) -> tuple[Path, Path]:
    """(the .desktop file, the icon) under ``home`` (default :func:`data_home`)."""
    home = Path(home) if home is not None else data_home()
    return (home / "applications" / ENTRY_NAME,
            home / "icons" / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def install(home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the entry and its icon for the current user; returns the files written."""
    entry, icon = entry_paths(home)
    _write_atomic(icon, (resources_dir() / "icons" / "app.svg").read_bytes())
    _write_atomic(entry, entry_text(command or launch_command()).encode("utf-8"))
    return [entry, icon]


def remove(home: Path | None = None) -> list[Path]:
    """Delete the entry and its icon; returns the files that were there."""
    gone = []
    for path in entry_paths(home):
        if path.is_file():
            path.unlink()
            gone.append(path)
    return gone
