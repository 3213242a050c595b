from robotlearn.cli.main import main

raise SystemExit(main())
