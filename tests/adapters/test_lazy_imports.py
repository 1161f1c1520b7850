"""The torch-free modules stay torch-free, and the package's lazy names all resolve."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import adaptd.adapters
import adaptd.adapters.meta

TORCH_FREE = [
    "adaptd.adapters",
    "adaptd.adapters.serving",
    "adaptd.adapters.codec",
    "adaptd.adapters.protocol",
]


def _modules_after(code: str) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert "torch" not in loaded


def test_serving_names_resolve_through_the_package_without_torch() -> None:
    code = (
        "from adaptd.adapters import NumpyPolicy, params_from_bytes, params_to_bytes, Task\n"
        "import numpy as np\n"
        "p = NumpyPolicy.from_params(params_from_bytes(params_to_bytes("
        "{'layers.0.weight': np.ones((1, 2)), 'layers.0.bias': np.zeros(1)})))\n"
        "assert float(p.predict(np.ones(2))) == 2.0"
    )
    assert "torch" not in _modules_after(code)


def test_a_torch_backed_name_does_load_torch() -> None:
    assert "torch" in _modules_after("from adaptd.adapters import PolicyNet")


@pytest.mark.parametrize("package", [adaptd.adapters, adaptd.adapters.meta])
def test_every_exported_name_resolves(package) -> None:
    for name in package.__all__:
        value = getattr(package, name)
        assert value is not None
        assert name in dir(package)


def test_package_names_are_the_defining_modules_objects() -> None:
    from adaptd.adapters.fast_weights import adapt
    from adaptd.adapters.meta.reptile import Reptile

    assert adaptd.adapters.adapt is adapt
    assert adaptd.adapters.Reptile is Reptile is adaptd.adapters.meta.Reptile


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = adaptd.adapters.nope
