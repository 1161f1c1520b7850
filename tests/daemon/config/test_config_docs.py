"""docs/configuration.md is exactly what the Settings object generates."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from adaptd.daemon.config.docs import render, section_fields
from adaptd.daemon.config.sections import Section
from adaptd.daemon.config.settings import Settings

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


def test_section_fields_cover_every_field_with_its_default_and_doc() -> None:
    fields = section_fields()
    defaults = Settings()
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            section: BaseModel = getattr(defaults, name)
            assert set(fields[name]) == set(annotation.model_fields)
            for field, (default, doc) in fields[name].items():
                assert default == getattr(section, field), f"{name}.{field}"
                assert doc.strip(), f"{name}.{field} has no description"
        else:
            default, doc = fields[""][name]
            assert default == getattr(defaults, name)
            assert doc.strip(), f"{name} has no description"
    sections = {n for n in Settings.model_fields if n in fields}
    assert set(fields) == sections | {""}
    assert {"kafka", "redis", "features", "detection", "adaptation", "replay", "metrics"} <= set(
        fields
    )
    assert set(fields[""]) == {"log_level", "log_format", "shutdown_grace_s"}


def test_a_row_shows_the_default_as_json_and_one_line_of_meaning() -> None:
    rows = render().splitlines()
    assert '| `log_level` | `ADAPTD_LOG_LEVEL` | `"info"` | Lowest level logged. |' in rows
    # A tuple is shown as the JSON list a user would write, a secret's default in clear.
    horizons = (
        "| `features.momentum_horizons` | `ADAPTD_FEATURES__MOMENTUM_HORIZONS` | `[5, 20, 60]` |"
    )
    assert any(row.startswith(horizons) for row in rows)
    url = '| `redis.url` | `ADAPTD_REDIS__URL` | `"redis://127.0.0.1:6379/0"` |'
    assert any(row.startswith(url) for row in rows)
    # A docstring over several lines becomes one table cell.
    (batch,) = [row for row in rows if row.startswith("| `kafka.max_poll_records`")]
    assert batch.endswith("against the per-batch overhead (throughput). |")
