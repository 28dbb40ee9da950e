"""`evcms-desktop autostart`: start the console (or the kiosk) when the station PC's user
logs in, so that attendants never start it by hand.

Linux and other XDG desktops: a desktop entry in ~/.config/autostart. Windows: a value
under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run. Both run this same
program with the same --db, so a restart finds the same data.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from pathlib import Path

from evcms_desktop import APP_NAME
from evcms_desktop.app.config import AppConfig

ENTRY_NAME = "evcms-desktop.desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "EVCMS Desktop"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "autostart", help="start the console (or kiosk) at login on this PC, or stop that"
    )
    parser.add_argument("action", choices=["enable", "disable", "status"])
    parser.add_argument("--kiosk", action="store_true", help="start the kiosk instead")
    parser.set_defaults(handler=run)


def command_line(config: AppConfig, kiosk: bool) -> list[str]:
    """How the login starts us: this program, this database, console or kiosk."""
    if getattr(sys, "frozen", False):  # a PyInstaller build
        program = [sys.executable]
    else:
        program = [sys.executable, "-m", "evcms_desktop"]
    target = config.database
    where = str(target.path.resolve()) if target.path is not None else (target.url or "")
    site = ["--site", config.site] if config.site else []
    return [*program, "--db", where, *site, *(["--kiosk"] if kiosk else [])]


def xdg_entry_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart" / ENTRY_NAME


def xdg_entry(argv: list[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={APP_NAME}\n"
        "Comment=Operator console and OCPP central system, started at login\n"
        f"Exec={shlex.join(argv)}\n"
        "Icon=evcms-desktop\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def run(args: argparse.Namespace, config: AppConfig) -> int:
    argv = command_line(config, args.kiosk)
    if sys.platform == "win32":
        return _windows(args.action, argv)
    path = xdg_entry_path()
    if args.action == "enable":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(xdg_entry(argv), encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"evcms-desktop: cannot write {path}: {exc.strerror}\n")
            return 1
        sys.stdout.write(f"Starts at login: {shlex.join(argv)} ({path})\n")
    elif args.action == "disable":
        path.unlink(missing_ok=True)
        sys.stdout.write("Does not start at login.\n")
    elif path.exists():
        sys.stdout.write(f"Starts at login ({path}).\n")
    else:
        sys.stdout.write("Does not start at login.\n")
    return 0


def _windows(action: str, argv: list[str]) -> int:  # pragma: no cover - Windows only
    import subprocess
    import winreg  # type: ignore[import-not-found,unused-ignore]

    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:  # type: ignore[attr-defined,unused-ignore]
        if action == "enable":
            winreg.SetValueEx(key, RUN_VALUE, 0, winreg.REG_SZ, subprocess.list2cmdline(argv))  # type: ignore[attr-defined,unused-ignore]
            sys.stdout.write("Starts at login (HKCU Run key).\n")
        elif action == "disable":
            with contextlib.suppress(FileNotFoundError):
                winreg.DeleteValue(key, RUN_VALUE)  # type: ignore[attr-defined,unused-ignore]
            sys.stdout.write("Does not start at login.\n")
        else:
            try:
                winreg.QueryValueEx(key, RUN_VALUE)  # type: ignore[attr-defined,unused-ignore]
                sys.stdout.write("Starts at login (HKCU Run key).\n")
            except FileNotFoundError:
                sys.stdout.write("Does not start at login.\n")
    return 0
