from orbyt.cli.main import main

raise SystemExit(main())
