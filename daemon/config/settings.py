"""The one Settings object for the whole daemon, and how it is loaded.

Settings come from, in rising priority: the defaults of the sections, an optional YAML,
TOML or JSON file (``adaptd run --config FILE``), environment variables prefixed
``ADAPTD_`` with ``__`` between a section and its field (``ADAPTD_KAFKA__BOOTSTRAP_SERVERS``),
and explicit overrides. Each is one of pydantic-settings' own sources, ordered by
``Settings.settings_customise_sources``; ``load_settings`` hands them its file and
environment and turns every validation error into one ConfigError that names each bad
setting, where an unknown ``ADAPTD_`` variable counts as one.

>>> s = load_settings(environ={"ADAPTD_ADAPTATION__INNER_STEPS": "3"})
>>> s.adaptation.inner_steps, s.kafka.input_topic
(3, 'adaptd.market')
>>> load_settings(environ={"ADAPTD_KAFKA__BOOTSTRAP": "x"})
Traceback (most recent call last):
...
adaptd.daemon.config.settings.ConfigError: invalid configuration: kafka.bootstrap: unknown setting
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from ..core.feature_spec import feature_names
from .connections import KafkaSettings, RedisSettings
from .learning import AdaptationSettings, ContinualSettings, ReplaySettings
from .sections import (
    DetectionSettings,
    FeatureSettings,
    MetricsSettings,
    RegimeSettings,
    Section,
    StateSettings,
)
from .signing import SigningSettings

# The sections stay importable from here, where the daemon has always imported them.
__all__ = [
    "ENV_DELIMITER",
    "ENV_PREFIX",
    "AdaptationSettings",
    "ConfigError",
    "ContinualSettings",
    "DetectionSettings",
    "EnvironSource",
    "FeatureSettings",
    "KafkaSettings",
    "MetricsSettings",
    "RedisSettings",
    "RegimeSettings",
    "ReplaySettings",
    "Section",
    "Settings",
    "SigningSettings",
    "StateSettings",
    "config_file_source",
    "load_settings",
    "redacted",
]

ENV_PREFIX = "ADAPTD_"
ENV_DELIMITER = "__"


class ConfigError(Exception):
    """Raised when the configuration is invalid; the message names every bad setting."""


@dataclass(frozen=True)
class _Inputs:
    config_file: Path | None
    environ: Mapping[str, str] | None


# settings_customise_sources is a classmethod called from inside Settings(); the file and
# environment of one load_settings() call reach it here (private to each thread and task).
_INPUTS: ContextVar[_Inputs | None] = ContextVar("adaptd_settings_inputs", default=None)


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
    state: StateSettings = StateSettings()
    signing: SigningSettings = SigningSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level logged."""
    log_format: Literal["json", "console"] = "json"
    """structlog renderer: one JSON object per line, or a readable console form."""
    shutdown_grace_s: float = Field(10.0, gt=0, le=300)
    """On SIGTERM, how long the daemon waits for what is in flight: adaptations, and storing
    and committing what was processed (a batch not stored by then is not committed, and is
    processed again after the restart). Closing the clients follows."""

    @model_validator(mode="after")
    def _check_regime_features(self) -> Settings:
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
        """Highest priority first: overrides, the environment, the file (then the defaults).

        ``Settings(...)`` on its own holds exactly the values given, whatever the process
        environment; only ``load_settings`` adds the environment and a file.
        """
        inputs = _INPUTS.get()
        if inputs is None:
            return (init_settings,)
        sources = [init_settings, EnvironSource(settings_cls, inputs.environ)]
        if inputs.config_file is not None:
            sources.append(config_file_source(settings_cls, inputs.config_file))
        return tuple(sources)


class EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over ``environ`` (os.environ when None).

    Two things differ from the stock source. A value is decoded as JSON only when it is a
    JSON list or object, so ``5,20,60`` (and ``8``) reach the section, which splits them,
    and malformed JSON reaches validation, which names the setting. And a prefixed
    variable that names no setting is passed on as an unknown key, which ``extra="forbid"``
    turns into an error, instead of being ignored.

    >>> source = EnvironSource(Settings, {"adaptd_Kafka__Group_ID": "g", "ADAPTD_NOPE": "1"})
    >>> source()
    {'kafka': {'group_id': 'g'}, 'nope': '1'}
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The hook through which EnvSettingsSource (and its dotenv subclass) reads variables.
        if self.environ is None:
            return super()._load_env_vars()
        return {self._apply_case_sensitive(k): v for k, v in self.environ.items()}

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            try:
                return super().decode_complex_value(field_name, field, value)
            except ValueError:
                return value
        return value

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        prefix = self._apply_case_sensitive(self.env_prefix)
        for name, value in self.env_vars.items():
            key = name[len(prefix) :]
            if name.startswith(prefix) and not self._names_a_setting(key):
                # Dotted, so that the error reads "logging.level: unknown setting".
                data[key.replace(self.env_nested_delimiter, ".")] = value
        return data

    def _names_a_setting(self, key: str) -> bool:
        head, nested, _ = key.partition(self.env_nested_delimiter)
        field = self.settings_cls.model_fields.get(head)
        if field is None:
            return False
        # Below a section, the section itself reports an unknown field.
        return not nested or (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        )


class _NamesTheFile:
    """Errors of a configuration file source that name the file, and a mapping required."""

    def _read_file(self, path: Path) -> dict[str, Any]:
        try:
            data = super()._read_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
        except (ValueError, yaml.YAMLError) as exc:  # JSON, TOML and UTF-8 errors are ValueErrors
            raise ConfigError(f"configuration file {path} does not parse: {exc}") from exc
        if data is None:  # an empty YAML file, as pydantic-settings 2.3 returns it
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping of sections")
        return data


class _YamlFile(_NamesTheFile, YamlConfigSettingsSource):
    pass


class _TomlFile(_NamesTheFile, TomlConfigSettingsSource):
    pass


class _JsonFile(_NamesTheFile, JsonConfigSettingsSource):
    pass


_FILE_SOURCES: dict[str, type[PydanticBaseSettingsSource]] = {
    ".yaml": _YamlFile,
    ".yml": _YamlFile,
    ".json": _JsonFile,
    ".toml": _TomlFile,
}


def config_file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    """The pydantic-settings source that reads ``path``, chosen by its suffix.

    Raises ConfigError, naming the file, when it is missing, unreadable, does not parse,
    or holds anything but a mapping of sections.
    """
    source = _FILE_SOURCES.get(path.suffix)
    if source is None:
        raise ConfigError(f"configuration file {path} must end in .yaml, .yml, .json or .toml")
    if not path.is_file():
        # The file sources skip a missing file silently; one that was asked for must exist.
        reason = "not a file" if path.exists() else "no such file"
        raise ConfigError(f"cannot read configuration file {path}: {reason}")
    return source(settings_cls, path)


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

    ``environ`` replaces os.environ (``{}``: no environment at all); ``overrides`` are
    fields or partial sections (``kafka={"group_id": "g"}``), merged field by field.
    Raises ConfigError with every offending setting named.
    """
    token = _INPUTS.set(_Inputs(config_file, environ))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    finally:
        _INPUTS.reset(token)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets replaced by '**********'."""
    return settings.model_dump(mode="json")
