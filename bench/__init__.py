"""The live room's benchmark: `make bench` (see bench/README.md)."""
