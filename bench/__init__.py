"""The benchmarks, run from the repository by the make targets; not installed."""
