"""A wheel built from the repository must carry the trained weights and the GUI resources."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_weights_and_resources_and_finds_them(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("desktop_denoiser-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "desktop_denoiser/_data/models/ddpm_denoiser.safetensors" in names
    assert "desktop_denoiser/_data/models/ddpm_denoiser_fast.safetensors" in names
    assert "desktop_denoiser/_data/models/ddpm_denoiser_camera.safetensors" in names
    assert "desktop_denoiser/_data/models/README.md" in names
    assert "desktop_denoiser/_data/resources/sample_noisy.png" in names
    assert any(n.startswith("desktop_denoiser/_data/resources/icons/") for n in names)
    assert "desktop_denoiser/core/unet.py" in names and "desktop_denoiser/qt/app.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "desktop-denoiser-cli = desktop_denoiser.cli:main" in text
    assert "desktop-denoiser = desktop_denoiser.qt.app:main" in text

    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    code = ("import desktop_denoiser, desktop_denoiser.paths as p; from desktop_denoiser.core.checkpoint import load_model;"
            "print(desktop_denoiser.__file__); print(load_model(p.default_model_path()).model.num_parameters())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(target), "PATH": ""},
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    file_line, nparams = r.stdout.split()
    assert file_line.startswith(str(target)) and int(nparams) > 100_000
