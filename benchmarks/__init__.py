"""modelshelf benchmarks: run with ``python -m benchmarks`` (see benchmarks/run.py)."""
