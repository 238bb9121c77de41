"""`python -m bench ...` = `python -m train.benchmark ...` (see train/benchmark.py)."""

import sys

from train.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
