"""The section models on their own: frozen, strict about keys, lists from strings, checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adaptd.daemon.config import connections, learning, sections, signing
from adaptd.daemon.config.connections import KafkaSettings, RedisSettings
from adaptd.daemon.config.learning import AdaptationSettings
from adaptd.daemon.config.sections import DetectionSettings, FeatureSettings, Section
from adaptd.daemon.config.signing import SigningSettings
from adaptd.daemon.core.signing import generate_key_pair

LEARNING = {"AdaptationSettings", "ContinualSettings", "ReplaySettings"}
CONNECTIONS = {"KafkaSettings", "RedisSettings"}
SECTIONS = sorted(Section.__subclasses__(), key=lambda cls: cls.__name__)


def test_every_section_is_found() -> None:
    assert {cls.__name__ for cls in SECTIONS} == {
        "AdaptationSettings",
        "ContinualSettings",
        "DetectionSettings",
        "FeatureSettings",
        "KafkaSettings",
        "MetricsSettings",
        "RedisSettings",
        "RegimeSettings",
        "ReplaySettings",
        "SigningSettings",
        "StateSettings",
    }
    for cls in SECTIONS:  # each in its module: learning, connections and signing apart
        module = learning if cls.__name__ in LEARNING else sections
        module = connections if cls.__name__ in CONNECTIONS else module
        module = signing if cls.__name__ == "SigningSettings" else module
        assert getattr(module, cls.__name__) is cls


@pytest.mark.parametrize("section", SECTIONS, ids=lambda cls: cls.__name__)
def test_sections_are_frozen_and_forbid_unknown_keys(section: type[Section]) -> None:
    instance = section()
    name = next(iter(section.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(instance, name, getattr(instance, name))
    with pytest.raises(ValidationError) as info:
        section(no_such_setting=1)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize("section", SECTIONS, ids=lambda cls: cls.__name__)
def test_every_section_and_field_is_documented(section: type[Section]) -> None:
    assert (section.__doc__ or "").strip()
    for name, field in section.model_fields.items():
        assert (field.description or "").strip(), f"{section.__name__}.{name}"


def test_a_list_field_takes_a_comma_separated_string() -> None:
    features = FeatureSettings(momentum_horizons=" 5, 20 ,", warmup_events=20)
    assert features.momentum_horizons == (5, 20)
    assert DetectionSettings(channels="returns,error").channels == ("returns", "error")
    assert AdaptationSettings(hidden=[8, 4]).hidden == (8, 4)  # a list stays a list


def test_calendar_features_are_chosen_by_name_and_kept_in_column_order() -> None:
    assert FeatureSettings().calendar == ()  # off: the feature vector of before
    chosen = FeatureSettings(calendar="quarter_end, hour_of_day")
    assert chosen.calendar == ("hour_of_day", "quarter_end")
    assert chosen == FeatureSettings(calendar=["hour_of_day", "quarter_end"])


def test_a_str_field_is_never_split() -> None:
    kafka = KafkaSettings(bootstrap_servers="k1:9092,k2:9092")
    assert kafka.bootstrap_servers == "k1:9092,k2:9092"


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (FeatureSettings, {"momentum_horizons": ()}, "momentum_horizons must be a non-empty"),
        (FeatureSettings, {"momentum_horizons": (0,)}, "positive integers"),
        (FeatureSettings, {"warmup_events": 30}, "warmup_events must be at least"),
        (FeatureSettings, {"slow_halflife": 10.0}, "slow_halflife must be longer"),
        (FeatureSettings, {"calendar": ("minute",)}, r"calendar\.0\n.*'hour_of_day'"),
        (FeatureSettings, {"calendar": "month_end,month_end"}, "calendar.*more than once"),
        (AdaptationSettings, {"query_size": 20}, "query_size must be smaller than shots"),
        (AdaptationSettings, {"hidden": (32, 0)}, "hidden must be a non-empty list"),
        (DetectionSettings, {"skip": ("adwin:price",)}, "unknown detector:channel pairs"),
        (KafkaSettings, {"security_protocol": "SASL_SSL"}, "sasl_mechanism is required"),
        (RedisSettings, {"key_prefix": "has space"}, "should match pattern"),
    ],
)
def test_checks_across_fields_name_the_problem(
    section: type[Section], values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        section(**values)


def test_secrets_are_secret_str() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_password="pw-123"
    )
    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == "pw-123"
    assert "pw-123" not in repr(kafka)
    assert "redis://" not in repr(RedisSettings())


def test_detection_can_be_set_per_stream() -> None:
    detection = DetectionSettings(
        detectors=("adwin",),
        streams={"BTC-USD": {"detectors": ["bocpd"], "bocpd_threshold": 0.97}},
    )
    btc = detection.for_stream("BTC-USD")
    assert (btc.detectors, btc.bocpd_threshold) == (("bocpd",), 0.97)
    assert btc.channels == detection.channels  # the rest is the section's
    assert detection.for_stream("AAPL") is detection
    with pytest.raises(ValidationError, match=r"streams\.X\.detectors\.0"):
        DetectionSettings(streams={"X": {"detectors": ["kswin"]}})
    with pytest.raises(ValidationError, match=r"streams\.X\.bocpd_threshold"):
        DetectionSettings(streams={"X": {"bocpd_threshold": 2.0}})
    with pytest.raises(ValidationError, match="cannot be set per stream"):
        DetectionSettings(streams={"X": {"scale_halflife": 10.0}})
    with pytest.raises(ValidationError, match=r"streams\.X\.nope"):
        DetectionSettings(streams={"X": {"nope": 1}})


def test_signing_keys_are_checked_when_the_settings_load(tmp_path) -> None:
    private, public = generate_key_pair()
    (tmp_path / "key.pem").write_bytes(private)
    (tmp_path / "key.pub").write_bytes(public)
    ok = SigningSettings(key_file=tmp_path / "key.pem", trusted_keys=str(tmp_path / "key.pub"))
    assert ok.private_pem() == private and ok.public_pems() == [public]
    assert SigningSettings(key=private.decode()).private_pem() == private
    assert SigningSettings().private_pem() is None
    with pytest.raises(ValidationError, match=r"(?s)key_file.*not an unencrypted Ed25519"):
        SigningSettings(key_file=tmp_path / "key.pub")  # the public key where the private goes
    with pytest.raises(ValidationError, match="cannot read"):
        SigningSettings(key_file=tmp_path / "missing.pem")
    with pytest.raises(ValidationError, match=r"(?s)trusted_keys.*not an Ed25519 public key"):
        SigningSettings(trusted_keys=[tmp_path / "key.pem"])
    with pytest.raises(ValidationError, match="key_file or key, not both"):
        SigningSettings(key_file=tmp_path / "key.pem", key=private.decode())
    with pytest.raises(ValidationError) as info:
        SigningSettings(key="-----BEGIN PRIVATE KEY-----\nsecretstuff\n-----END PRIVATE KEY-----")
    assert "secretstuff" not in str(info.value)  # the key's text is never echoed
