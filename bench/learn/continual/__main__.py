"""``python -m bench.learn.continual``: run the continual-learning benchmarks (see
:mod:`.harness`)."""

from .harness import main

if __name__ == "__main__":
    raise SystemExit(main())
