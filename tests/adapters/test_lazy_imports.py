"""The torch-free modules stay torch-free, and the package's lazy names all resolve.

(Every module of ``adaptd.adapters.fewshot`` and ``adaptd.adapters.tasks`` loads torch: the
few-shot learners are torch modules, and ``tasks/__init__`` imports its torch-backed modules,
so even its numpy-only ones, ``stats``, ``market``, ``segmentation`` and ``digits``, cannot be
imported without it. Their names are exported lazily, so ``adaptd.adapters`` stays cheap.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import adaptd.adapters
import adaptd.adapters.fewshot
import adaptd.adapters.meta
import adaptd.adapters.tasks

TORCH_FREE = [
    "adaptd.adapters",
    "adaptd.adapters.serving",
    "adaptd.adapters.codec",
    "adaptd.adapters.protocol",
    "adaptd.adapters.types",
]


def _modules_after(code: str) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert "torch" not in loaded


def test_the_package_imports_nothing_heavy() -> None:
    loaded = set(_modules_after("import adaptd.adapters"))
    assert not loaded & {"torch", "numpy", "sklearn", "river", "scipy"}


def test_protocol_names_resolve_through_the_package_without_torch() -> None:
    code = (
        "from adaptd.adapters import EpisodeStats, FewShotClassifier, FittedSupport, "
        "MetaLearner, MetaStats, Regularizer, Task\n"
        "assert EpisodeStats.__module__ == 'adaptd.adapters.protocol'"
    )
    assert "torch" not in _modules_after(code)


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


@pytest.mark.parametrize(
    "package",
    [adaptd.adapters, adaptd.adapters.meta, adaptd.adapters.fewshot, adaptd.adapters.tasks],
)
def test_every_exported_name_resolves(package) -> None:
    for name in package.__all__:
        value = getattr(package, name)
        assert value is not None
        assert name in dir(package)


def test_package_names_are_the_defining_modules_objects() -> None:
    from adaptd.adapters.fast_weights import adapt
    from adaptd.adapters.fewshot.protonet import ProtoNet
    from adaptd.adapters.meta.reptile import Reptile
    from adaptd.adapters.protocol import FewShotClassifier
    from adaptd.adapters.tasks.tuning import tune

    assert adaptd.adapters.adapt is adapt
    assert adaptd.adapters.Reptile is Reptile is adaptd.adapters.meta.Reptile
    assert adaptd.adapters.ProtoNet is ProtoNet is adaptd.adapters.fewshot.ProtoNet
    assert adaptd.adapters.tune is tune is adaptd.adapters.tasks.tune
    assert adaptd.adapters.FewShotClassifier is FewShotClassifier


def test_the_stub_is_the_one_public_list() -> None:
    """``__all__`` comes from ``__init__.pyi`` alone, and every name there is re-exported in the
    form type checkers accept (``from .module import name as name``)."""
    stub = ast.parse(Path(adaptd.adapters.__file__).with_suffix(".pyi").read_text())
    listed = []
    for node in stub.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.dump(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name} is not re-exported"
            listed.append(alias.name)
    assert sorted(listed) == sorted(adaptd.adapters.__all__)
    assert len(set(listed)) == len(listed)
    for name in ("ProtoNet", "Prototypes", "MatchingNet", "MatchingSupport", "RelationNet"):
        assert name in adaptd.adapters.__all__
    for name in ("Embedding", "EpisodeStats", "FewShotClassifier", "FittedSupport"):
        assert name in adaptd.adapters.__all__
    for name in ("SinusoidTasks", "EpisodeSampler", "rotated_digits", "EarlyStopping", "tune"):
        assert name in adaptd.adapters.__all__
    for name in ("Regularizer", "InnerStep"):
        assert name in adaptd.adapters.__all__


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nope"):
        _ = adaptd.adapters.nope
