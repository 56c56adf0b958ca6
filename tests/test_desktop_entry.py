"""The Linux desktop entry: written for this user only (under a data folder given here), a valid key file
that starts the app with the chosen photos, with the app's icon; --remove takes both away."""

import configparser

from desktop_denoiser import desktop_entry
from desktop_denoiser.cli import main
from desktop_denoiser.paths import resources_dir
from desktop_denoiser.pipeline.imageio import SUPPORTED_SUFFIXES


def read_entry(path):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # keys are case-sensitive
    cp.read(path, encoding="utf-8")
    return dict(cp["Desktop Entry"])


def test_install_and_remove_through_the_cli(tmp_path, capsys):
    assert main(["desktop-entry", "--data-home", str(tmp_path)]) == 0
    entry, icon = desktop_entry.entry_paths(tmp_path)
    assert str(entry) in capsys.readouterr().out
    keys = read_entry(entry)
    assert keys["Type"] == "Application" and keys["Name"] == "Desktop Denoiser" and keys["Terminal"] == "false"
    assert keys["Exec"].endswith(" %F") and keys["Icon"] == desktop_entry.ICON_NAME
    assert "Photography" in keys["Categories"].split(";")
    mimes = set(filter(None, keys["MimeType"].split(";")))
    assert mimes == {"image/jpeg", "image/png", "image/tiff", "image/webp", "image/bmp"}
    assert len(SUPPORTED_SUFFIXES) == 7  # .jpg .jpeg .png .tif .tiff .webp .bmp: the five types above
    assert icon.read_bytes() == (resources_dir() / "icons" / "app.svg").read_bytes()
    assert main(["desktop-entry", "--data-home", str(tmp_path), "--remove"]) == 0
    assert not entry.exists() and not icon.exists()
    assert main(["desktop-entry", "--data-home", str(tmp_path), "--remove"]) == 0
    assert "no desktop entry" in capsys.readouterr().out


def test_exec_quotes_paths_as_the_specification_asks():
    text = desktop_entry.entry_text(["/opt/My Apps/py$thon", "-m", "desktop_denoiser.qt.app", "100%"])
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert exec_line == 'Exec="/opt/My Apps/py\\\\$thon" -m desktop_denoiser.qt.app "100%%" %F'
    plain = desktop_entry.entry_text(["/usr/bin/desktop-denoiser"])
    assert "Exec=/usr/bin/desktop-denoiser %F" in plain and "TryExec=/usr/bin/desktop-denoiser" in plain


def test_the_launch_command_runs_the_app():
    command = desktop_entry.launch_command()
    assert command[-1] == "desktop_denoiser.qt.app" or command[0].endswith("desktop-denoiser")
