"""The one-way import rules of docs/architecture.md, checked on the code as it stands.

Every ``import`` and ``from ... import`` of every module (at module level, inside functions
and under ``TYPE_CHECKING`` alike) is read with ``ast`` and resolved to a module name; each
rule names the modules it governs and what they may not import. Two rules are also checked
by running Python: the core imports without torch, and the daemon's own process (service,
edges, configuration, command line) never imports torch, aiokafka's absence aside.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "adaptd.daemon": ROOT / "daemon",
    "adaptd.adapters": ROOT / "adapters",
    "adaptd.replay": ROOT / "replay",
    "adaptd.tools": ROOT / "tools",
    "bench": ROOT / "bench",
}

IO = ("aiokafka", "redis", "prometheus_client", "structlog", "socket", "http", "urllib")
TORCH_FREE_LIBRARY = (
    "adaptd.adapters",  # the package itself: its names load lazily
    "adaptd.adapters.checks",
    "adaptd.adapters.serving",
    "adaptd.adapters.codec",
    "adaptd.adapters.forecasting",
    "adaptd.adapters.conformal",
    "adaptd.adapters.performance",
    "adaptd.adapters.changepoints",
    "adaptd.adapters.protocol",
    "adaptd.adapters.types",
)

# (what, the modules it governs, forbidden imports, allowed exceptions)
RULES: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    (
        "the core does no I/O, imports no torch and never sees the Settings",
        "adaptd.daemon.core",
        (
            *IO,
            "torch",
            "pydantic",
            "pydantic_settings",
            "adaptd.daemon.config",
            "adaptd.daemon.io",
            "adaptd.daemon.learner",
            "adaptd.daemon.service",
            "adaptd.daemon.cli",
            "adaptd.replay",
            "adaptd.adapters",
        ),
        (*TORCH_FREE_LIBRARY, "adaptd.replay", "adaptd.replay.episode"),
    ),
    (
        "the learner talks to no broker, store or port, and knows nothing of the service",
        "adaptd.daemon.learner",
        (*IO, "adaptd.daemon.io", "adaptd.daemon.service", "adaptd.daemon.cli", "adaptd.replay"),
        ("adaptd.replay", "adaptd.replay.episode"),
    ),
    (
        "the edges know nothing of the wiring or the learner",
        "adaptd.daemon.io",
        ("adaptd.daemon.service", "adaptd.daemon.learner", "adaptd.daemon.cli", "torch"),
        (),
    ),
    (
        "the configuration is data: no edge, no wiring, no learner",
        "adaptd.daemon.config",
        (
            *IO,
            "torch",
            "adaptd.daemon.io",
            "adaptd.daemon.service",
            "adaptd.daemon.learner",
            "adaptd.daemon.cli",
        ),
        (),
    ),
    (
        "the service reaches the learner only through its torch-free boundary",
        "adaptd.daemon.service",
        ("torch", "adaptd.daemon.learner"),
        # The one deliberate exception: adaptation.isolation=thread builds the learner in
        # this process, imported lazily inside build._open_learner.
        (
            "adaptd.daemon.learner.messages",
            "adaptd.daemon.learner.process",
            "adaptd.daemon.learner.learners",
        ),
    ),
    (
        "the library never imports the daemon or the tooling",
        "adaptd.adapters",
        ("adaptd.daemon", "adaptd.tools", "bench"),
        (),
    ),
    (
        "the replay buffer is a library of its own (it shares the argument checks)",
        "adaptd.replay",
        ("adaptd.daemon", "adaptd.adapters", "adaptd.tools", "bench", "torch"),
        ("adaptd.adapters", "adaptd.adapters.checks"),
    ),
    (
        "nothing installed imports the tooling or the benchmarks",
        "adaptd.daemon",
        ("adaptd.tools", "bench"),
        (),
    ),
]


def _module_of(path: Path) -> str:
    for package, folder in PACKAGES.items():
        if path.is_relative_to(folder):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            return ".".join([package, *parts])
    raise ValueError(path)


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for folder in PACKAGES.values():
        for path in folder.rglob("*.py"):
            found[_module_of(path)] = path
    return found


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """Every module ``module`` imports (resolved, with the line), wherever the import is."""
    path = _modules()[module]
    package = module if _is_package(module) else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # ``from pkg import submodule``
                if f"{target}.{alias.name}" in _modules():
                    yield f"{target}.{alias.name}", node.lineno


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize(
    ("what", "governed", "forbidden", "allowed"), RULES, ids=[r[0] for r in RULES]
)
def test_import_rule(
    what: str, governed: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    broken = []
    for module in sorted(_modules()):
        if not _under(module, governed):
            continue
        for target, line in imports_of(module):
            if any(_under(target, f) for f in forbidden) and target not in allowed:
                if _under(target, governed):
                    continue  # a part may import itself
                broken.append(f"{module}:{line} imports {target}")
    assert not broken, f"{what}:\n" + "\n".join(broken)


def test_the_rules_govern_real_packages() -> None:
    modules = _modules()
    for what, governed, _, _ in RULES:
        assert governed in modules, what


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        m: {t for t, _ in imports_of(m) if t in modules and t != m and not _is_parent(t, m)}
        for m in modules
    }


def _is_parent(package: str, module: str) -> bool:
    # Importing a module runs its packages' __init__ first; that is not a cycle of the code.
    return module.startswith(package + ".")


def test_no_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_the_core_imports_without_torch_and_without_io() -> None:
    core = sorted(m for m in _modules() if _under(m, "adaptd.daemon.core"))
    code = (
        "import sys\n"
        "class NoTorch:  # as in an environment without torch\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"for name in {core!r}:\n"
        "    __import__(name)\n"
        "loaded = sorted(m.split('.')[0] for m in sys.modules)\n"
        f"bad = sorted(set(loaded) & {set(IO) - {'socket', 'http', 'urllib'}!r})\n"
        "assert not bad, bad\n"
    )
    result = _fresh(code)
    assert result.returncode == 0, result.stderr


def test_the_daemons_own_process_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import adaptd.daemon.cli, adaptd.daemon.service, adaptd.daemon.service.build\n"
        "import adaptd.daemon.io.subscriber\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = _fresh(code)
    assert result.returncode == 0, result.stderr
