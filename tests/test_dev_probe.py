"""dev.py starts Qt as the console will before it runs anything, and says in one line why
Qt cannot start instead of letting Qt abort with its own screenful."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_dev(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    return subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "console", "--help"],
        cwd=ROOT,
        env={**base, "EVCMS_NO_APT": "1", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def one_line_report(result: subprocess.CompletedProcess[str]) -> str:
    """The report is the last line; above it only dev.py's own set-up may speak, not Qt."""
    assert result.returncode != 0
    assert "usage:" not in result.stdout  # the console was never started
    for qt_noise in ("qt.qpa", "This application failed to start", "Available platform plugins"):
        assert qt_noise not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb platform is Linux's")
def test_xcb_without_a_display_is_reported_in_one_line() -> None:
    line = one_line_report(run_dev(QT_QPA_PLATFORM="xcb"))
    assert line.startswith("Qt cannot start on the platform 'xcb': ")
    # Which of the two depends on the machine's libraries; both name the missing piece.
    assert "no display" in line or ("lacks the system library lib" in line and "apt-get" in line)


def test_an_unloadable_platform_plugin_is_reported_in_one_line() -> None:
    line = one_line_report(run_dev(QT_QPA_PLATFORM="nosuchplatform"))
    assert (
        line == "Qt cannot start on the platform 'nosuchplatform': Qt has no such platform plugin."
    )


def test_a_working_platform_lets_the_program_start() -> None:
    result = run_dev(QT_QPA_PLATFORM="offscreen")
    assert result.returncode == 0, result.stderr
    assert "usage: evcms-desktop" in result.stdout
