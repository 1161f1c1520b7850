# Every target creates .venv by itself through `setup`; run them on a fresh machine as they are.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test fuzz lint bench bench-learn bench-markets bench-risk-regimes bench-detect bench-continual chaos clean

setup: $(STAMP)

# torch first: 2.13.0 is the CPU wheel here; any other request may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[demo,bench,test]'
	touch $(STAMP)

demo: setup
	$(BIN)/adaptd demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

# The decoder's fuzzers with 100,000 cases each (make test runs them with a few hundred).
fuzz: setup
	FUZZ_EXAMPLES=100000 $(BIN)/pytest -q -p no:cacheprovider -o timeout=3600 \
		tests/daemon/core/test_schema.py -k "arbitrary_bytes or paths_agree"

bench: setup
	$(BIN)/python -m bench.ingest --out docs/bench/ingest.json

# learn2learn is a baseline of the speed section only, never a dependency: built best effort
# (`-` ignores a failure; the benchmark then reports it as unavailable).
bench-learn: setup
	-$(BIN)/python -m bench.learn.learn2learn
	$(BIN)/python -m bench.learn --out docs/bench/learn.json --docs docs/benchmarks.md

# Every market series the bench extra's packages ship, through the return, risk and strategy
# tasks (about five minutes on 2 cores).
bench-markets: setup
	$(BIN)/python -m bench.markets --out docs/bench/markets.json

# The risk task's adaptation on a synthetic regime built for it (docs/benchmarks.md, "Risk
# adaptation on a regime built for it"; about a minute on 2 cores).
bench-risk-regimes: setup
	$(BIN)/python -m bench.markets.risk_regimes --out docs/bench/risk_regimes.json

# Every detector online on TCPD's series and river's market series (a few minutes on 2 cores).
bench-detect: setup
	$(BIN)/python -m bench.detect --out docs/bench/detect.json

# About 40 minutes on 2 cores (2 workers, one torch thread each); the module with --quick is
# a smoke test of a few seconds a section.
bench-continual: setup
	$(BIN)/python -m bench.learn.continual --out docs/bench/continual.json --docs docs/benchmarks.md

# The fault suite (issue 12): SIGKILLed daemons, Redis and the broker paused, Redis killed,
# Redis full, network cuts; each scenario on its own loopback broker and Redis; invariants
# checked, figures printed (about 10 minutes on 2 cores). Not part of `make test`.
chaos: setup
	$(BIN)/python -m bench.chaos --out docs/bench/chaos.json

lint: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
