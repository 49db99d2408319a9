from orbyt.cli import main

raise SystemExit(main())
