"""crmd's benchmark: `make bench`."""
