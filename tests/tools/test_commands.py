"""The tooling's commands reach ``adaptd`` through entry points, and say which extra they need."""

from __future__ import annotations

import argparse
import sys

import pytest

from adaptd.daemon.cli import main, plugin_commands
from adaptd.tools.commands import DEMO, FEED


def test_the_installed_tooling_adds_demo_and_feed() -> None:
    commands = plugin_commands()
    assert commands["demo"] is DEMO and commands["feed"] is FEED


def test_the_commands_parse_their_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    DEMO.configure(parser)
    args = parser.parse_args(["--speed", "50", "--no-progress"])
    assert (args.speed, args.no_progress, args.limit) == (50.0, True, None)
    with pytest.raises(SystemExit):
        main(["feed", "--csv", "x.csv", "--dataset", "apple"])  # one source only
    assert "not allowed with" in capsys.readouterr().err


def test_without_the_demo_extra_the_demo_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "adaptd.tools.demo", None)  # as if rich were missing
    with pytest.raises(SystemExit, match=r"pip install 'adaptd\[demo\]'"):
        DEMO.run(argparse.Namespace(speed=1.0, out=None, limit=None, no_progress=True))
