"""The learning sections' own checks: the adaptation's trust region."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptd.daemon.config.settings import ConfigError, load_settings


def test_the_trust_region_is_off_by_default_and_set_from_the_environment_or_a_file(
    tmp_path: Path,
) -> None:
    assert load_settings(environ={}).adaptation.trust_region is None
    env = {"ADAPTD_ADAPTATION__TRUST_REGION": "0.05"}
    assert load_settings(environ=env).adaptation.trust_region == 0.05
    path = tmp_path / "c.yaml"
    path.write_text("adaptation:\n  trust_region: 0.2\n")
    assert load_settings(path, environ={}).adaptation.trust_region == 0.2
    path.write_text("adaptation:\n  trust_region: null\n")
    assert load_settings(path, environ={}).adaptation.trust_region is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0", "greater than 0"),
        ("-0.1", "greater than 0"),
        ("inf", "finite number"),
        ("nan", "finite number"),
        ("wide", "valid number"),
    ],
)
def test_a_bad_trust_region_is_named(value: str, why: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^invalid configuration: adaptation\.trust_region: .*{why}"
    ):
        load_settings(environ={"ADAPTD_ADAPTATION__TRUST_REGION": value})
