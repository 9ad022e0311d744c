from numatui.cli import main

raise SystemExit(main())
