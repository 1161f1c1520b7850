from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adaptd.daemon.config.settings import (
    ENV_DELIMITER,
    ENV_PREFIX,
    ConfigError,
    EnvironSource,
    Settings,
    load_settings,
    redacted,
)

SASL = {
    "ADAPTD_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "ADAPTD_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
    "ADAPTD_KAFKA__SASL_USERNAME": "svc",
    "ADAPTD_KAFKA__SASL_PASSWORD": "hunter2-secret",
}


def test_defaults_without_any_source() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    assert s.kafka.input_topic == "adaptd.market"
    assert s.features.momentum_horizons == (5, 20, 60)


def test_env_prefix_and_nested_delimiter() -> None:
    assert (ENV_PREFIX, ENV_DELIMITER) == ("ADAPTD_", "__")
    s = load_settings(
        environ={
            "ADAPTD_KAFKA__BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "ADAPTD_ADAPTATION__INNER_LR": "0.25",
            "adaptd_replay__episode_size": "64",  # names are case-insensitive
            "ADAPTD_LOG_LEVEL": "debug",  # a top-level field: no section
            "KAFKA__GROUP_ID": "not ours",  # no prefix: ignored
            "ADAPTDX_KAFKA__GROUP_ID": "not ours either",
            "PATH": "/usr/bin",
        }
    )
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092"  # a str field is never split
    assert s.adaptation.inner_lr == 0.25
    assert s.replay.episode_size == 64
    assert s.log_level == "debug"
    assert s.kafka.group_id == "adaptd"


def test_the_environ_source_nests_by_section() -> None:
    env = {"ADAPTD_KAFKA__GROUP_ID": "1", "ADAPTD_LOG_LEVEL": "x", "OTHER": "y"}
    assert EnvironSource(Settings, env)() == {"kafka": {"group_id": "1"}, "log_level": "x"}
    env = {"ADAPTD_ADAPTATION__HIDDEN": "[1, 2]"}
    assert EnvironSource(Settings, env)() == {"adaptation": {"hidden": [1, 2]}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5,10,30", (5, 10, 30)), (" 5 , 10 ", (5, 10)), ("[7, 14]", (7, 14)), ("8", (8,))],
)
def test_comma_lists_in_env(value: str, expected: tuple[int, ...]) -> None:
    s = load_settings(
        environ={
            "ADAPTD_FEATURES__MOMENTUM_HORIZONS": value,
            "ADAPTD_FEATURES__WARMUP_EVENTS": "60",
        }
    )
    assert s.features.momentum_horizons == expected


def test_comma_lists_of_names_and_widths() -> None:
    s = load_settings(
        environ={
            "ADAPTD_DETECTION__DETECTORS": "adwin",
            "ADAPTD_DETECTION__CHANNELS": "returns,error",
            "ADAPTD_ADAPTATION__HIDDEN": "64,16",
        }
    )
    assert s.detection.detectors == ("adwin",)
    assert s.detection.channels == ("returns", "error")
    assert s.adaptation.hidden == (64, 16)


YAML = """
kafka:
  group_id: from-file
  client_id: file-client
features:
  momentum_horizons: [3, 9]
  warmup_events: 9
adaptation:
  hidden: "8,8"
log_format: console
"""

TOML = """
log_format = "console"

[kafka]
group_id = "from-file"
client_id = "file-client"

[features]
momentum_horizons = [3, 9]
warmup_events = 9

[adaptation]
hidden = "8,8"
"""


JSON = json.dumps(
    {
        "kafka": {"group_id": "from-file", "client_id": "file-client"},
        "features": {"momentum_horizons": [3, 9], "warmup_events": 9},
        "adaptation": {"hidden": "8,8"},
        "log_format": "console",
    }
)


@pytest.mark.parametrize(
    ("name", "text"), [("a.yaml", YAML), ("a.yml", YAML), ("a.toml", TOML), ("a.json", JSON)]
)
def test_config_files_with_env_on_top(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    s = load_settings(path, environ={})
    assert (s.kafka.group_id, s.kafka.client_id) == ("from-file", "file-client")
    assert s.features.momentum_horizons == (3, 9)
    assert s.adaptation.hidden == (8, 8)
    assert s.log_format == "console"
    s = load_settings(
        path, environ={"ADAPTD_KAFKA__GROUP_ID": "from-env", "ADAPTD_LOG_FORMAT": "json"}
    )
    assert s.kafka.group_id == "from-env"  # the environment wins...
    assert s.kafka.client_id == "file-client"  # ...field by field, not section by section
    assert s.features.warmup_events == 9
    assert s.log_format == "json"


def test_explicit_overrides_beat_the_environment() -> None:
    s = load_settings(
        environ={"ADAPTD_ADAPTATION__SHOTS": "30"}, adaptation={"shots": 40, "query_size": 10}
    )
    assert (s.adaptation.shots, s.adaptation.query_size) == (40, 10)


def test_overrides_merge_field_by_field_with_the_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("adaptation:\n  inner_lr: 0.5\n  shots: 30\n")
    adaptation = {"shots": 40}
    s = load_settings(path, environ={"ADAPTD_ADAPTATION__INNER_STEPS": "3"}, adaptation=adaptation)
    assert (s.adaptation.inner_lr, s.adaptation.inner_steps, s.adaptation.shots) == (0.5, 3, 40)
    assert adaptation == {"shots": 40}  # the caller's mapping is left as it was
    with pytest.raises(ConfigError, match=r"^invalid configuration: nope: unknown setting$"):
        load_settings(environ={}, nope=1)


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any ADAPTD_ variable of the caller's."""
    for name in list(os.environ):
        if name.upper().startswith("ADAPTD_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_environ_replaces_the_process_environment(process_env: pytest.MonkeyPatch) -> None:
    process_env.setenv("ADAPTD_KAFKA__GROUP_ID", "from-process")
    assert load_settings().kafka.group_id == "from-process"
    assert load_settings(environ={}).kafka.group_id == "adaptd"
    given = {"ADAPTD_KAFKA__CLIENT_ID": "given"}
    s = load_settings(environ=given)
    assert (s.kafka.group_id, s.kafka.client_id) == ("adaptd", "given")


def test_settings_alone_read_no_environment_even_after_a_failed_load(
    process_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    process_env.setenv("ADAPTD_KAFKA__GROUP_ID", "from-process")
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError):
        load_settings(environ={"ADAPTD_ADAPTATION__SHOTS": "0"})
    assert Settings().kafka.group_id == "adaptd"
    assert Settings(kafka={"client_id": "x"}).kafka.group_id == "adaptd"


def test_unknown_keys_in_a_file_are_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("features:\n  momentum_horizon: [5]\nnope: 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "features.momentum_horizon: unknown setting" in message
    assert "nope: unknown setting" in message


def test_unknown_keys_in_env_are_named() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap: unknown setting"):
        load_settings(environ={"ADAPTD_KAFKA__BOOTSTRAP": "x"})
    with pytest.raises(ConfigError, match=r"logging: unknown setting"):
        load_settings(environ={"ADAPTD_LOGGING": "x"})
    # Below a top-level name that is not a section, or below no known name at all.
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ADAPTD_LOG_LEVEL__X": "1", "adaptd_logging__level": "info"})
    assert "log_level.x: unknown setting" in str(info.value)
    assert "logging.level: unknown setting" in str(info.value)


def test_malformed_json_in_env_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^invalid configuration: features\.momentum_horizons"):
        load_settings(environ={"ADAPTD_FEATURES__MOMENTUM_HORIZONS": "[5, 20"})
    with pytest.raises(ConfigError, match=r"^invalid configuration: kafka: "):
        load_settings(environ={"ADAPTD_KAFKA": '{"group_id": '})


def test_a_whole_section_as_json_in_env() -> None:
    s = load_settings(
        environ={
            "ADAPTD_KAFKA": '{"group_id": "g", "client_id": "c"}',
            "ADAPTD_KAFKA__CLIENT_ID": "d",
        }
    )
    assert (s.kafka.group_id, s.kafka.client_id) == ("g", "d")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ADAPTD_ADAPTATION__SHOTS": "1"}, "adaptation.shots"),
        ({"ADAPTD_ADAPTATION__SHOTS": "many"}, "adaptation.shots"),
        ({"ADAPTD_KAFKA__SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol"),
        ({"ADAPTD_REDIS__KEY_PREFIX": "has space"}, "redis.key_prefix"),
        ({"ADAPTD_DETECTION__DETECTORS": "adwin,kswin"}, "detection.detectors"),
        ({"ADAPTD_METRICS__PORT": "70000"}, "metrics.port"),
        ({"ADAPTD_LOG_LEVEL": "loud"}, "log_level"),
        # Checks across fields name the section.
        ({"ADAPTD_ADAPTATION__QUERY_SIZE": "30"}, "adaptation: .*query_size"),
        ({"ADAPTD_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"}, "kafka: .*sasl_mechanism"),
        ({"ADAPTD_ADAPTATION__META_ALGORITHM": "maml2"}, "adaptation.meta_algorithm"),
        ({"ADAPTD_REGIMES__NOVELTY": "0"}, "regimes.novelty"),
        ({"ADAPTD_REGIMES__EXCLUDE_FEATURES": "ret_z,nope"}, "regimes.exclude_features"),
        ({"ADAPTD_FEATURES__CALENDAR": "hour_of_day,minute"}, "features.calendar"),
        ({"ADAPTD_FEATURES__CALENDAR": "month_end,month_end"}, "features.calendar"),
        ({"ADAPTD_DETECTION__RESEGMENT_WINDOW": "10"}, "detection.resegment_window"),
        ({"ADAPTD_DETECTION__RESEGMENT_STABLE": "0"}, "detection.resegment_stable"),
        ({"ADAPTD_DETECTION__RESEGMENT_PENALTY": "inf"}, "detection.resegment_penalty"),
        ({"ADAPTD_DETECTION__RESEGMENT_TREND_PENALTY": "-1"}, "detection.resegment_trend_penalty"),
        ({"ADAPTD_ADAPTATION__VALIDATE_Z": "0"}, "adaptation.validate_z"),
    ],
)
def test_invalid_values_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"^invalid configuration: .*{named}"):
        load_settings(environ=env)


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ADAPTD_ADAPTATION__SHOTS": "0", "ADAPTD_KAFKA__NOPE": "1"})
    assert "adaptation.shots" in str(info.value)
    assert "kafka.nope" in str(info.value)


def test_bad_config_files(tmp_path: Path) -> None:
    missing = r"cannot read configuration file .*missing\.yaml: no such file"
    with pytest.raises(ConfigError, match=missing):
        load_settings(tmp_path / "missing.yaml", environ={})
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"cannot read configuration file .*d\.yaml: not a file"):
        load_settings(tmp_path / "d.yaml", environ={})
    bad_json = tmp_path / "c.json"
    bad_json.write_text('{"kafka": ')
    with pytest.raises(ConfigError, match=r"c\.json does not parse"):
        load_settings(bad_json, environ={})
    latin = tmp_path / "l.yaml"
    latin.write_bytes("kafka:\n  group_id: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"l\.yaml does not parse"):
        load_settings(latin, environ={})
    scalar = tmp_path / "s.json"
    scalar.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"s\.json must hold a mapping"):
        load_settings(scalar, environ={})
    ini = tmp_path / "c.ini"
    ini.write_text("[kafka]\n")
    with pytest.raises(ConfigError, match=r"c\.ini must end in \.yaml, \.yml, \.json or \.toml"):
        load_settings(ini, environ={})
    broken = tmp_path / "c.toml"
    broken.write_text("[kafka\n")
    with pytest.raises(ConfigError, match=r"c\.toml does not parse"):
        load_settings(broken, environ={})
    listed = tmp_path / "c.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"c\.yaml must hold a mapping"):
        load_settings(listed, environ={})
    empty = tmp_path / "e.yaml"
    empty.write_text("")
    assert load_settings(empty, environ={}) == Settings()


def test_sections_are_frozen() -> None:
    s = load_settings(environ={})
    with pytest.raises(ValueError, match="frozen"):
        s.kafka.group_id = "x"  # type: ignore[misc]


def test_redacted_hides_the_secrets() -> None:
    env = {**SASL, "ADAPTD_REDIS__URL": "redis://:redis-pw@db:6379/0"}
    s = load_settings(environ=env)
    assert s.kafka.sasl_password.get_secret_value() == "hunter2-secret"
    assert s.redis.url.get_secret_value() == "redis://:redis-pw@db:6379/0"
    shown = redacted(s)
    text = json.dumps(shown)
    assert "hunter2-secret" not in text
    assert "redis-pw" not in text
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["redis"]["url"] == "**********"
    # Everything else is shown as set.
    assert shown["kafka"]["sasl_username"] == "svc"
    assert shown["features"]["momentum_horizons"] == [5, 20, 60]
    assert redacted(load_settings(environ={}))["kafka"]["sasl_password"] is None


def test_forgetting_prevention_defaults() -> None:
    s = load_settings(environ={})
    c = s.continual
    assert (c.penalty, c.ewc_lambda, c.policy_lambda, c.ewc_decay) == (
        "online_ewc",
        100.0,
        1.0,
        0.9,
    )
    assert (c.holdout_per_regime, c.holdout_max_regimes, c.retention_floor) == (2, 64, 0.8)
    assert s.replay.sample_strategy == "regime"
    off = load_settings(environ={"ADAPTD_CONTINUAL__PENALTY": "none"})
    assert off.continual.penalty == "none"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ADAPTD_CONTINUAL__PENALTY": "l2"}, "continual.penalty"),
        ({"ADAPTD_CONTINUAL__EWC_DECAY": "1.5"}, "continual.ewc_decay"),
        ({"ADAPTD_CONTINUAL__EWC_LAMBDA": "-1"}, "continual.ewc_lambda"),
        ({"ADAPTD_CONTINUAL__POLICY_LAMBDA": "-1"}, "continual.policy_lambda"),
        ({"ADAPTD_CONTINUAL__FISHER_EPISODES": "0"}, "continual.fisher_episodes"),
        ({"ADAPTD_CONTINUAL__HOLDOUT_PER_REGIME": "-1"}, "continual.holdout_per_regime"),
        ({"ADAPTD_CONTINUAL__HOLDOUT_MAX_REGIMES": "0"}, "continual.holdout_max_regimes"),
        ({"ADAPTD_CONTINUAL__RETENTION_FLOOR": "0"}, "continual.retention_floor"),
        ({"ADAPTD_CONTINUAL__RETENTION_FLOOR": "1.2"}, "continual.retention_floor"),
        ({"ADAPTD_CONTINUAL__HOLDOUT_MIN_EXAMPLES": "1"}, "continual.holdout_min_examples"),
        ({"ADAPTD_CONTINUAL__FISHER": "true"}, "continual.fisher: unknown setting"),
        ({"ADAPTD_REPLAY__SAMPLE_STRATEGY": "by_regime"}, "replay.sample_strategy"),
    ],
)
def test_bad_forgetting_prevention_settings_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=env)


def test_small_episodes_need_no_change_to_the_holdout_settings() -> None:
    # holdout_min_examples is capped at the episode size where it is used (the service).
    s = load_settings(environ={"ADAPTD_REPLAY__EPISODE_SIZE": "8"})
    assert (s.replay.episode_size, s.continual.holdout_min_examples) == (8, 16)


@pytest.mark.parametrize("url", ["http://u:pw@127.0.0.1:6379", "127.0.0.1:6379", "tcp://x"])
def test_a_redis_url_with_another_scheme_is_a_configuration_error(url: str) -> None:
    """It used to pass validation and fail at the first connection (exit 1, not 2)."""
    with pytest.raises(ConfigError, match=r"^invalid configuration: redis\.url: .*scheme") as e:
        load_settings(environ={"ADAPTD_REDIS__URL": url})
    assert "pw" not in str(e.value)  # the password is never echoed


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://u:pw@h:6380", "unix:///tmp/r.sock", "REDIS://h"]
)
def test_redis_unix_and_tls_urls_are_accepted(url: str) -> None:
    assert load_settings(environ={"ADAPTD_REDIS__URL": url}).redis.url.get_secret_value() == url
