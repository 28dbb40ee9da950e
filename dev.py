#!/usr/bin/env python3
"""One-step set-up and run for a fresh checkout (Python 3.11+).

    python3 dev.py console   # create .venv, install, open the console
    python3 dev.py test      # create .venv, install, run the whole test suite
    python3 dev.py lock      # after a change of dependencies: refresh requirements.lock

Extra arguments go to the program (`console`) or to pytest (`test`). Everything is
installed from requirements.lock (exact versions, checked against their hashes), and
again whenever it or pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import re
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
LOCK = ROOT / "requirements.lock"
LOCK_COMMAND = (
    "-m",
    "piptools",
    "compile",
    "--quiet",
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--extra",
    "test",
    "--output-file",
    LOCK.name,
    "pyproject.toml",
)
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
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(LOCK.read_bytes())
    wanted = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing EVCMS Desktop and its test tools into .venv ...", flush=True)
    pip = (PYTHON, "-m", "pip", "--disable-pip-version-check")
    locked = (*pip, "install", "--quiet", "--require-hashes", "--requirement", LOCK)
    if run(*locked) != 0:
        sys.exit("Installing from requirements.lock failed; see the messages above.")
    # The project itself, built with the locked setuptools: nothing unhashed comes in.
    own = (*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", "--editable", ".")
    if run(*own) != 0:
        sys.exit("Installing EVCMS Desktop failed; see the messages above.")
    if run(*pip, "check") != 0:
        sys.exit(
            "requirements.lock does not hold what pyproject.toml asks for:"
            " run `python3 dev.py lock` and commit requirements.lock."
        )
    STAMP.write_text(wanted)


def lock() -> int:
    """Resolve pyproject.toml's dependencies (and the test extra) into requirements.lock."""
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    probe = [str(PYTHON), "-c", "import piptools"]
    missing = subprocess.call(probe, stderr=subprocess.DEVNULL) != 0
    if missing and run(PYTHON, "-m", "pip", "install", "--quiet", "pip-tools") != 0:
        sys.exit("Installing pip-tools failed; see the messages above.")
    return run(PYTHON, *LOCK_COMMAND)


# Creates the application on the platform Qt will use: importing QtWidgets alone does not
# load the platform plugin, which is what fails on a machine without Qt's xcb libraries.
QT_PROBE = (
    "import sys\n"
    "from PySide6.QtGui import QGuiApplication\n"
    "app = QGuiApplication(sys.argv[:1])\n"
    "print(app.platformName())\n"
)
MISSING_LIBRARY = re.compile(r"(lib[\w.+-]+\.so[.\d]*): cannot open shared object file")
PLATFORM_NAME = re.compile(r'Qt platform plugin "([^"]*)"')


def debian_package(soname: str) -> str:
    """Debian's name for the package of a shared library: libxcb-icccm.so.4 -> libxcb-icccm4."""
    name, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    return (name + ("-" if name[-1].isdigit() else "") + version).lower()


def qt_problem(env: dict[str, str]) -> tuple[str, list[str]] | None:
    """Why Qt cannot start a GUI under `env`, in one line, and the libraries it lacks."""
    result = subprocess.run(
        [str(PYTHON), "-c", QT_PROBE],
        check=False,
        cwd=ROOT,
        env={**env, "QT_DEBUG_PLUGINS": "1"},
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        return None
    log = result.stderr
    missing = sorted(set(MISSING_LIBRARY.findall(log)))
    named = PLATFORM_NAME.findall(log)
    platform = named[-1] if named else env.get("QT_QPA_PLATFORM", "default")
    if missing:
        reason = f"it lacks the system library {', '.join(missing)}"
    elif "could not connect to display" in log:
        reason = "there is no display (DISPLAY is not set or not reachable; try xvfb-run)"
    elif "Could not find the Qt platform plugin" in log:
        reason = "Qt has no such platform plugin"
    else:
        lines = [line for line in log.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"the probe exited with status {result.returncode}"
    return f"Qt cannot start on the platform '{platform}': {reason}.", missing


def ensure_qt_libraries(env: dict[str, str]) -> None:
    """Start Qt as the program will; install what is missing (root, apt-get) or say what to do.

    EVCMS_NO_APT=1 only reports, never installs.
    """
    problem = qt_problem(env)
    if problem is None:
        return
    text, missing = problem
    linux = sys.platform.startswith("linux")
    can_install = (
        linux
        and missing
        and shutil.which("apt-get")
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and not os.environ.get("EVCMS_NO_APT")
    )
    if can_install:
        print(f"{text} Installing Qt's system libraries ...", flush=True)
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        packages = sorted({*QT_DEBIAN_PACKAGES, *map(debian_package, missing)})
        run("apt-get", "update", "-qq", env=quiet)
        run("apt-get", "install", "-y", "-qq", *packages, env=quiet)
        problem = qt_problem(env)
        if problem is None:
            return
        text, missing = problem
    if linux and missing:
        packages = sorted({*QT_DEBIAN_PACKAGES, *map(debian_package, missing)})
        text += f" On Debian or Ubuntu: sudo apt-get install {' '.join(packages)}"
    sys.exit(text)


def main() -> int:
    command, *rest = sys.argv[1:] or ["console"]
    if command not in {"console", "test", "lock"}:
        sys.exit(__doc__)
    if command == "lock":
        return lock()
    ensure_venv()
    if command == "console":
        ensure_qt_libraries(dict(os.environ))
        return run(PYTHON, "-m", "evcms_desktop", *rest)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    ensure_qt_libraries(env)
    return run(PYTHON, "-m", "pytest", *rest, env=env)


if __name__ == "__main__":
    sys.exit(main())
