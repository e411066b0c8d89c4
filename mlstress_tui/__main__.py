from mlstress_tui.cli import main

raise SystemExit(main())
