"""The `orbyt` command line: `orbyt dev`, `orbyt api`, `orbyt worker`, `orbyt keys`."""
