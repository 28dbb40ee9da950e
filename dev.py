#!/usr/bin/env python3
"""One-step set-up and run for a fresh checkout (Python 3.11+).

    python3 dev.py console   # create .venv, install, open the console
    python3 dev.py test      # create .venv, install, run the whole test suite

Extra arguments go to the program (`console`) or to pytest (`test`). The virtual
environment is refreshed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".evcms-installed"
# Shared libraries the Qt wheels load on Linux that a minimal machine may lack.
QT_DEBIAN_PACKAGES = [
    "libegl1",
    "libgl1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libfontconfig1",
    "libdbus-1-3",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-image0",
    "fonts-dejavu-core",
]


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("EVCMS Desktop needs Python 3.11 or newer.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing EVCMS Desktop and its test tools into .venv ...", flush=True)
    steps = [
        (PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"),
        (PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[test]"),
    ]
    for step in steps:
        if run(*step) != 0:
            sys.exit("Installing failed; see the messages above.")
    STAMP.write_text(wanted)


def ensure_qt_libraries() -> None:
    """On Linux, install the system libraries Qt needs when they are missing and we can."""
    if not sys.platform.startswith("linux"):
        return
    probe = "from PySide6 import QtGui, QtWidgets"
    if subprocess.call([str(PYTHON), "-c", probe], stderr=subprocess.DEVNULL) == 0:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("Installing the system libraries Qt needs ...", flush=True)
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=quiet)
        run("apt-get", "install", "-y", "-qq", *QT_DEBIAN_PACKAGES, env=quiet)
    if subprocess.call([str(PYTHON), "-c", probe]) != 0:
        sys.exit(
            "Qt cannot load its system libraries. On Debian or Ubuntu:\n"
            f"  sudo apt-get install {' '.join(QT_DEBIAN_PACKAGES)}"
        )


def main() -> int:
    command, *rest = sys.argv[1:] or ["console"]
    if command not in {"console", "test"}:
        sys.exit(__doc__)
    ensure_venv()
    ensure_qt_libraries()
    if command == "console":
        return run(PYTHON, "-m", "evcms_desktop", *rest)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return run(PYTHON, "-m", "pytest", *rest, env=env)


if __name__ == "__main__":
    sys.exit(main())
