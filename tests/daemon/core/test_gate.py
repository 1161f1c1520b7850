"""The publication gate: paired per-example query losses, a margin and a z of standard errors."""

from __future__ import annotations

import numpy as np
import pytest

from adaptd.daemon.core.gate import passes_gate


def test_a_clear_improvement_passes_the_gate() -> None:
    rng = np.random.default_rng(0)
    current = 1.0 + 0.1 * rng.random(16)
    assert passes_gate(current, current - 0.5, min_improvement=0.0, z=1.0)
    assert passes_gate(current, current - 0.5, min_improvement=0.0, z=3.0)


def test_a_noisy_improvement_fails_at_z1_but_passes_at_z0() -> None:
    rng = np.random.default_rng(1)
    current = rng.random(16) + 1.0
    noise = rng.normal(0.0, 1.0, 16)
    adapted = current - 0.1 - (noise - noise.mean())  # mean improvement 0.1, se ~0.25
    assert float((current - adapted).mean()) == pytest.approx(0.1)
    assert not passes_gate(current, adapted, min_improvement=0.0, z=1.0)
    assert passes_gate(current, adapted, min_improvement=0.0, z=0.0)


def test_the_gate_needs_more_than_min_improvement() -> None:
    current = np.full(8, 1.0)
    assert passes_gate(current, current - 0.2, min_improvement=0.1, z=0.0)
    assert not passes_gate(current, current - 0.2, min_improvement=0.3, z=0.0)
    assert not passes_gate(current, current - 0.2, min_improvement=0.2, z=0.0)  # strictly more
    assert not passes_gate(current, current, min_improvement=0.0, z=0.0)  # no improvement
    assert not passes_gate(current, current + 0.1, min_improvement=0.0, z=0.0)


def test_the_gate_with_one_query_example_has_no_standard_error() -> None:
    assert passes_gate(np.array([1.0]), np.array([0.5]), min_improvement=0.0, z=5.0)
