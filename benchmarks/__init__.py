"""Benchmarks: each ``bench_*.py`` module has a ``main()`` that prints a table.

Run them all with ``python -m benchmarks`` (``--quick`` or ``DSPEX_BENCH_SCALE`` shrinks).
"""
