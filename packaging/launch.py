"""Entry point of the PyInstaller build: the `evcms-desktop` command."""

from evcms_desktop.app.cli import main

raise SystemExit(main())
