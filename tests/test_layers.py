"""The core and pipeline layers (and the CLI) must import without Qt."""

import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
import desktop_denoiser.core, desktop_denoiser.pipeline
names = []
for pkg in (desktop_denoiser.core, desktop_denoiser.pipeline):  # every module of the two layers, new ones too
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
assert "desktop_denoiser.pipeline.progress" in names and "desktop_denoiser.core.noise_analysis" in names, names
import desktop_denoiser.cli
from desktop_denoiser.cli import build_parser
build_parser()
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6') or m.startswith('desktop_denoiser.qt'))
print(','.join(bad))
"""


def test_core_pipeline_cli_import_without_qt():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_only_qt_package_imports_pyside():
    import re
    from pathlib import Path

    import desktop_denoiser

    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|shiboken6)", re.M)

    root = Path(desktop_denoiser.__file__).parent
    offenders = [
        str(p.relative_to(root)) for p in root.rglob("*.py")
        if "qt" not in p.relative_to(root).parts[:1] and p.name != "__main__.py" and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_imports_point_one_way():
    """core imports neither pipeline nor qt; pipeline does not import qt."""
    import re
    from pathlib import Path

    import desktop_denoiser

    root = Path(desktop_denoiser.__file__).parent
    rules = {"core": ("pipeline", "qt", "bench"), "pipeline": ("qt", "bench")}
    offenders = []
    for layer, banned in rules.items():
        for p in (root / layer).rglob("*.py"):
            text = p.read_text(encoding="utf-8")
            for b in banned:
                if re.search(rf"^\s*(from|import)\s+(\.\.{b}\b|desktop_denoiser\.{b}\b)", text, re.M):
                    offenders.append(f"{layer}/{p.name} imports {b}")
    assert offenders == []
