from evcms_desktop.app.cli import main

# Guarded: the Analysis tab's worker is a spawned process, which imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
