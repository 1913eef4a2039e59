"""Benchmarks: `python -m benchmarks` runs every bench module's main()."""
