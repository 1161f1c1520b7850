"""One configuration object for the whole daemon.

Settings come from, in rising priority: the defaults below, an optional YAML or TOML
file (``adaptd --config FILE``), and environment variables prefixed ``ADAPTD_`` with
``__`` between a section and its field (``ADAPTD_KAFKA__BOOTSTRAP_SERVERS``).
Every section is frozen and forbids unknown keys, so a misspelled setting is an error
that names it instead of a silently ignored value.

>>> s = load_settings(environ={"ADAPTD_ADAPTATION__INNER_STEPS": "3"})
>>> s.adaptation.inner_steps, s.kafka.input_topic
(3, 'adaptd.market')
>>> load_settings(environ={"ADAPTD_KAFKA__BOOTSTRAP": "x"})
Traceback (most recent call last):
...
adaptd.daemon.config.settings.ConfigError: invalid configuration: kafka.bootstrap: unknown setting
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .sections import (
    AdaptationSettings,
    ContinualSettings,
    DetectionSettings,
    FeatureSettings,
    KafkaSettings,
    MetricsSettings,
    RedisSettings,
    RegimeSettings,
    ReplaySettings,
    Section,
)

# The sections stay importable from here, where the daemon has always imported them.
__all__ = [
    "ENV_DELIMITER",
    "ENV_PREFIX",
    "AdaptationSettings",
    "ConfigError",
    "ContinualSettings",
    "DetectionSettings",
    "FeatureSettings",
    "KafkaSettings",
    "MetricsSettings",
    "RedisSettings",
    "RegimeSettings",
    "ReplaySettings",
    "Section",
    "Settings",
    "env_overrides",
    "load_settings",
    "read_config_file",
    "redacted",
]

ENV_PREFIX = "ADAPTD_"
ENV_DELIMITER = "__"


class ConfigError(Exception):
    """Raised when the configuration is invalid; the message names every bad setting."""


class Settings(BaseSettings):
    """Everything adaptd can be told. See docs/configuration.md for every field."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
        case_sensitive=False,
        use_attribute_docstrings=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    features: FeatureSettings = FeatureSettings()
    detection: DetectionSettings = DetectionSettings()
    adaptation: AdaptationSettings = AdaptationSettings()
    regimes: RegimeSettings = RegimeSettings()
    replay: ReplaySettings = ReplaySettings()
    continual: ContinualSettings = ContinualSettings()
    metrics: MetricsSettings = MetricsSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level logged."""
    log_format: Literal["json", "console"] = "json"
    """structlog renderer: one JSON object per line, or a readable console form."""
    shutdown_grace_s: float = Field(10.0, gt=0, le=300)
    """On SIGTERM, how long in-flight adaptations may finish before they are cancelled."""

    @model_validator(mode="after")
    def _check_regime_features(self) -> Settings:
        from ..core.features import feature_names  # features imports this module

        names = feature_names(self.features)
        unknown = [n for n in self.regimes.exclude_features if n not in names]
        if unknown:
            raise ValueError(
                f"regimes.exclude_features: unknown features {unknown} (features: {list(names)})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment is read by load_settings() so that unknown ADAPTD_ variables are
        # errors; here only explicit values count.
        return (init_settings,)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) configuration file into a dict."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml", ".json"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"configuration file {path} must end in .yaml, .yml, .json or .toml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"configuration file {path} does not parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of sections")
    return data


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Nest ``ADAPTD_SECTION__FIELD=value`` variables into ``{"section": {"field": value}}``.

    Values that look like JSON lists or objects are parsed (``'[5, 20]'``); a plain
    comma-separated value is split for list-valued fields by the sections themselves.
    """
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"invalid configuration: {name} conflicts with another setting")
            node = child
        node[path[-1]] = _parse_env_value(value)
    return out


def _parse_env_value(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {msg}")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the Settings from a file, the environment and explicit overrides (in that order).

    Raises ConfigError with every offending setting named.
    """
    data: dict[str, Any] = read_config_file(config_file) if config_file else {}
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets replaced by '**********'."""
    return settings.model_dump(mode="json")
