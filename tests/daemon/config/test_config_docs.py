"""docs/configuration.md is exactly what the Settings object generates."""

from __future__ import annotations

from pathlib import Path

from adaptd.daemon.config.docs import render
from adaptd.daemon.config.settings import section_fields

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_configuration_doc_matches_settings() -> None:
    assert DOC.read_text() == render(), (
        "docs/configuration.md is stale: run `adaptd config docs > docs/configuration.md`"
    )


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    text = DOC.read_text()
    for section, fields in section_fields().items():
        for name, (_, doc) in fields.items():
            env = (
                f"ADAPTD_{section.upper()}__{name.upper()}" if section else f"ADAPTD_{name.upper()}"
            )
            assert f"`{env}`" in text
            assert doc, f"{section}.{name} has no description"
