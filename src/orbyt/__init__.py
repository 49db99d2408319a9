"""The `orbyt` command: `orbyt dev`, `orbyt api`, `orbyt worker`."""
