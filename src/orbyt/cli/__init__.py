"""The `orbyt` command line: `orbyt dev`, `api`, `worker`, `keys`, `usage` (entry point:
`orbyt.cli.main:main`)."""
