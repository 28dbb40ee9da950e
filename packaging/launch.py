"""Entry point of the PyInstaller build: the `evcms-desktop` command."""

from evcms_desktop.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
