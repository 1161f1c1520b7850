"""``python -m bench.learn``: run the learning benchmarks (see :mod:`.harness`)."""

from .harness import main

if __name__ == "__main__":
    raise SystemExit(main())
