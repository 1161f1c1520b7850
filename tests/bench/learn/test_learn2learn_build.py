from __future__ import annotations

import importlib.util

from bench.learn import learn2learn as build

# The top of learn2learn 0.2.0's learn2learn/__init__.py and learn2learn/data/utils.py.
INIT = """#!/usr/bin/env python3

from ._version import __version__
from . import algorithms
from . import data
from . import gym
from . import text
from . import vision
from . import optim
from . import nn
from .utils import *
"""
UTILS = """#!/usr/bin/env python3

import torch
import requests
import tqdm

CHUNK_SIZE = 1 * 1024 * 1024
"""


def test_patched_init_imports_neither_gym_nor_text_nor_vision() -> None:
    patched = build.patch_init(INIT)
    imports = [line for line in patched.splitlines() if line.startswith("from . import")]
    assert imports == [
        "from . import algorithms",
        "from . import data",
        "from . import optim",
        "from . import nn",
    ]
    assert "from .utils import *" in patched
    assert build.patch_init(patched) == patched


def test_patched_data_utils_runs_without_requests_and_tqdm() -> None:
    patched = build.patch_data_utils(UTILS)
    namespace: dict[str, object] = {}
    exec(compile(patched, "utils.py", "exec"), namespace)
    assert namespace["CHUNK_SIZE"] == 1024 * 1024
    for name in ("requests", "tqdm"):
        assert namespace[name] is None or namespace[name].__name__ == name
    assert "import torch" in patched.splitlines()


def test_load_matches_what_is_installed() -> None:
    module = build.load()
    if importlib.util.find_spec("learn2learn") is None:
        assert module is None
    else:
        assert module is not None
        assert module.__version__ == build.VERSION
        assert hasattr(module.algorithms, "MAML")
