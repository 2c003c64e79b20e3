from semrouter.cli import main

raise SystemExit(main())
