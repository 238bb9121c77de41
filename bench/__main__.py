"""`python -m bench --part speed|quality|all ...`: the benchmark (bench/benchmark.py)."""

import sys

from bench.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
