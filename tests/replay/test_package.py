"""The package's top level is cheap: the episode format (which the daemon's pure core uses)
imports no Redis client, and every public name resolves lazily from the one table."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import adaptd.replay as replay

PURE = ["adaptd.replay", "adaptd.replay.episode", "adaptd.replay.strata"]


def _modules_after(code: str) -> set[str]:
    # A fresh interpreter: this one has long imported redis for the other tests.
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_redis(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert "redis" not in loaded
    assert not any(name.startswith("adaptd.replay.") for name in loaded - {module, *PURE})


def test_a_redis_backed_name_imports_redis_on_first_use() -> None:
    loaded = _modules_after("import adaptd.replay as r\nr.ReservoirBuffer")
    assert {"redis", "adaptd.replay.reservoir"} <= loaded


@pytest.mark.parametrize("name", replay.__all__)
def test_every_public_name_resolves_to_the_module_the_table_names(name: str) -> None:
    module = importlib.import_module(f"adaptd.replay.{replay._EXPORTS[name]}")
    assert getattr(replay, name) is getattr(module, name)
    assert name in module.__all__
    assert name in dir(replay)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'SampleStrategy'"):
        replay.SampleStrategy  # noqa: B018
    from adaptd.replay import ReservoirBuffer, sampler_for  # the old and the new names

    assert ReservoirBuffer.__name__ == "ReservoirBuffer"
    assert callable(sampler_for)
