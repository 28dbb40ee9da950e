from evcms_desktop.app.cli import main

raise SystemExit(main())
