"""The sections of the Settings object: one frozen model per part of the daemon (the learning
sections, adaptation, replay and forgetting prevention, are in :mod:`.learning`; the Kafka
and Redis connections in :mod:`.connections`; signing in :mod:`.signing`).

Each field's docstring is its documentation (docs/configuration.md is generated from them).
Every section forbids unknown keys, so a misspelled setting is an error that names it, and
a list field also takes a comma-separated string, as a list is written in one environment
variable or a YAML scalar:

>>> FeatureSettings(momentum_horizons="5, 20", warmup_events=20).momentum_horizons
(5, 20)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..core.calendar import CalendarFeature, calendar_selection
from ..core.detectors.factory import DetectorParams

Detector = Literal["adwin", "page_hinkley", "cusum", "focus", "bocpd", "resegment"]
Channel = Literal["returns", "volatility", "error"]
_DETECTOR_DEFAULTS = DetectorParams()
"""The detectors' parameters' defaults, written once (in the detector classes or, for
river's, in ``DetectorParams``)."""


class Section(BaseModel):
    """Base of every section: frozen, unknown keys rejected, field docstrings as descriptions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: Any) -> Any:
        # Environment variables are strings: "5,20,60" is how a user writes a list there.
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, str) and _is_tuple(field.annotation):
                out[name] = [part.strip() for part in value.split(",") if part.strip()]
        return out


def _is_tuple(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is tuple


class FeatureSettings(Section):
    """Online features per stream and the delayed label."""

    momentum_horizons: tuple[int, ...] = (5, 20, 60)
    """Horizons, in events, of the momentum features (log price change over h events)."""
    fast_halflife: float = Field(10.0, gt=0)
    """Half-life, in events, of the fast exponentially weighted statistics."""
    slow_halflife: float = Field(100.0, gt=0)
    """Half-life, in events, of the slow exponentially weighted statistics."""
    label_horizon: int = Field(5, ge=1, le=10_000)
    """The label of the example formed at event t is the forward log return to t + horizon."""
    label_clip: float = Field(10.0, gt=0)
    """Labels and features are volatility-scaled and clipped to +/- this value."""
    warmup_events: int = Field(60, ge=2)
    """Events a stream needs before it forms examples (at least the longest horizon)."""
    max_out_of_order_ms: int = Field(60_000, ge=0)
    """An event older than its stream's newest event by more than this is dead-lettered."""
    calendar: tuple[CalendarFeature, ...] = ()
    """Calendar features from the event time in UTC, appended after the others: hour_of_day
    and day_of_week (each a sine/cosine pair), month_end and quarter_end (1 on the last
    weekday of a month, of a quarter). Empty: none, the feature vector of before. One list
    serves every stream, so choose what the streams' frequency makes meaningful: hour_of_day
    for intraday events, the others for daily events or finer. Never part of the regime
    embedding. Changing it changes the networks' input width (docs/operations.md says what
    to delete first)."""

    @field_validator("calendar")
    @classmethod
    def _calendar_order(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The columns' order is fixed, so two spellings of one choice are one configuration.
        return calendar_selection(value)

    @model_validator(mode="after")
    def _check(self) -> FeatureSettings:
        if not self.momentum_horizons or min(self.momentum_horizons) < 1:
            raise ValueError("momentum_horizons must be a non-empty list of positive integers")
        if self.warmup_events < max(self.momentum_horizons):
            raise ValueError("warmup_events must be at least the longest momentum horizon")
        if self.slow_halflife <= self.fast_halflife:
            raise ValueError("slow_halflife must be longer than fast_halflife")
        return self


class DetectionSettings(Section):
    """Regime-shift detection per stream."""

    detectors: tuple[Detector, ...] = ("adwin", "page_hinkley")
    """Detectors run on every channel: river's `adwin` and `page_hinkley`, adaptd's `cusum`
    (self-starting, threshold from a false-alarm rate), `focus` (CUSUM for a shift of
    unknown size), `bocpd` (Bayesian online change-point detection) and `resegment` (the
    penalised optimal segmentation of the last values, kept up to date: the most accurate
    on TCPD's series, slow to alarm and costly); see docs/detection.md for how to choose and
    tune them."""
    channels: tuple[Channel, ...] = ("returns", "volatility", "error")
    """What the detectors watch: scaled returns, volatility, the live policy's error."""
    skip: tuple[str, ...] = ("page_hinkley:returns",)
    """detector:channel pairs left out. Page-Hinkley on raw returns raised most of the false
    alarms on steady heavy-tailed series, and ADWIN already watches that channel."""
    adwin_delta: float = Field(_DETECTOR_DEFAULTS.adwin_delta, gt=0, lt=1)
    """ADWIN confidence; smaller means fewer, surer detections."""
    ph_threshold: float = Field(_DETECTOR_DEFAULTS.ph_threshold, gt=0)
    """Page-Hinkley threshold (lambda), in units of the normalised input."""
    ph_delta: float = Field(_DETECTOR_DEFAULTS.ph_delta, ge=0)
    """Page-Hinkley tolerated drift per observation."""
    ph_alpha: float = Field(_DETECTOR_DEFAULTS.ph_alpha, gt=0, le=1)
    """Page-Hinkley forgetting factor of the running mean. Below 1, river decays the running
    sums but not the extremes they are compared with, and false alarms grow with time."""
    cusum_k: float = Field(_DETECTOR_DEFAULTS.cusum_k, gt=0)
    """CUSUM reference value, in standard deviations: half the shift it is tuned for."""
    cusum_false_alarms_per_10k: float = Field(
        _DETECTOR_DEFAULTS.cusum_false_alarms_per_10k, gt=0, le=10_000
    )
    """CUSUM threshold, stated as the false alarms expected per 10,000 in-control events."""
    focus_false_alarms_per_10k: float = Field(
        _DETECTOR_DEFAULTS.focus_false_alarms_per_10k, ge=0.1, le=100
    )
    """FOCuS threshold, as the false alarms expected per 10,000 in-control events (0.1 to
    100: the range its simulated calibration covers)."""
    bocpd_expected_run: float = Field(_DETECTOR_DEFAULTS.bocpd_expected_run, gt=1)
    """BOCPD's prior mean regime length in events (its hazard is the inverse)."""
    bocpd_threshold: float = Field(_DETECTOR_DEFAULTS.bocpd_threshold, gt=0, le=1)
    """BOCPD raises an alarm when the posterior probability of a regime younger than 50
    events reaches this."""
    resegment_penalty: float = Field(
        _DETECTOR_DEFAULTS.resegment_penalty, gt=0, allow_inf_nan=False
    )
    """Re-segmentation's penalty per change, times log(window length) and the window's
    variance."""
    resegment_stable: int = Field(_DETECTOR_DEFAULTS.resegment_stable, ge=1, le=1000)
    """Events a change must stay in the re-segmentation's optimum before it is reported (its
    alarms come at least this many events, less one, after the change)."""
    resegment_window: int = Field(_DETECTOR_DEFAULTS.resegment_window, ge=20, le=10_000)
    """Most recent events the re-segmentation segments: bounds its memory (about 30 KB
    stored at 1000) and the cost of recomputing its programme."""
    resegment_trend_penalty: float | None = Field(
        _DETECTOR_DEFAULTS.resegment_trend_penalty, ge=0, allow_inf_nan=False
    )
    """Unset: the re-segmentation's segments are levels. Set: a segment may instead follow a
    straight line, at this extra penalty (times the penalty per change), so that a trend
    is one segment rather than a staircase and a change of slope is a change; about three
    times the cost per event."""
    scale_halflife: float = Field(1000.0, gt=0)
    """Half-life, in events, of the long-run volatility that normalises detector inputs."""
    warmup_events: int = Field(100, ge=0)
    """Detections are ignored for this many events after a stream starts."""
    debounce_events: int = Field(10, ge=1)
    """Detector firings within this many events count together towards min_detectors."""
    min_detectors: int = Field(1, ge=1)
    """Distinct detector/channel pairs that must fire within the debounce window."""
    cooldown_events: int = Field(100, ge=0)
    """After a shift, further firings are absorbed for this many events."""
    extreme_z: float = 8.0
    """A single return of at least this many long-run standard deviations (the scale that
    normalises detector inputs) is a shift at that event, trigger extreme:returns, without
    waiting for the detectors: outside the warm-up and the cool-down, whatever
    debounce_events and min_detectors say. 0 turns it off."""

    @field_validator("extreme_z")
    @classmethod
    def _check_extreme_z(cls, value: float) -> float:
        if not 0.0 <= value < float("inf"):  # NaN fails too
            raise ValueError(
                f"extreme_z must be 0 (off) or a positive number of standard deviations, "
                f"got {value}"
            )
        return value

    confirm: bool = False
    """Confirm each shift from the market channels by an offline segmentation (PELT) of the
    recent scaled returns before acting on it: moved to the segmentation's change nearest
    the detectors' estimate, or retracted when the segmentation finds none. Runs off the
    event loop; a shift waits until confirm_after events have followed its estimated start.
    Error-channel shifts and extreme moves are not confirmed."""
    confirm_window: int = Field(200, ge=20, le=5000)
    """Events the confirmation segments at most (back to the previous shift)."""
    confirm_after: int = Field(10, ge=1, le=1000)
    """Events after a shift's estimated start before it is confirmed (at most cooldown_events:
    the cool-down keeps other shifts away meanwhile)."""
    confirm_penalty: float = Field(3.0, gt=0)
    """Penalty per change of the segmentation, times log(window length): 3 is the BIC's count
    for a change of mean and variance."""

    streams: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-stream detection, by stream id: any of this section's settings but `streams` and
    `scale_halflife`, replacing the section's for that stream (for example
    `{"BTC-USD": {"detectors": ["bocpd"], "bocpd_threshold": 0.97}}`). Streams not named use
    the section's settings. A stream restored from a snapshot keeps the detectors its state
    was learnt with."""

    @model_validator(mode="after")
    def _check_skip(self) -> DetectionSettings:
        known = {f"{d}:{c}" for d in get_args(Detector) for c in ("returns", "volatility", "error")}
        unknown = [pair for pair in self.skip if pair not in known]
        if unknown:
            raise ValueError(f"skip: unknown detector:channel pairs {unknown}")
        if self.confirm and self.confirm_after > self.cooldown_events:
            raise ValueError(
                f"confirm_after ({self.confirm_after}) must be at most cooldown_events "
                f"({self.cooldown_events}): a held shift must not meet the next one"
            )
        for stream, overrides in self.streams.items():
            if bad := sorted(set(overrides) & {"streams", "scale_halflife"}):
                raise ValueError(f"streams.{stream}: {bad} cannot be set per stream")
            try:
                self.for_stream(stream)
            except ValidationError as exc:
                where = ".".join(str(p) for p in exc.errors()[0]["loc"])
                raise ValueError(f"streams.{stream}.{where}: {exc.errors()[0]['msg']}") from None
        return self

    def for_stream(self, stream: str) -> DetectionSettings:
        """The settings of ``stream``: the section's, with its entry in ``streams`` over
        them."""
        overrides = self.streams.get(stream)
        if not overrides:
            return self
        base = self.model_dump(exclude={"streams"})
        return DetectionSettings.model_validate({**base, **overrides})


class RegimeSettings(Section):
    """The per-stream prototypical regime classifier that names each shift's regime."""

    novelty: float = Field(4.0, gt=0)
    """A shift's examples belong to a stored regime when the squared distance of their mean
    to its prototype is at most this many times what two samples of one regime would give
    (about 1); otherwise they found a new regime."""
    max_regimes: int = Field(32, ge=1, le=4096)
    """Regimes kept per stream; beyond it, the one seen least recently is forgotten."""
    warm_start: bool = True
    """Adapt a returning regime from the last policy published for it, not from the
    meta-learned initialisation."""
    exclude_features: tuple[str, ...] = ("mean_slow_z", "vol_ratio", "spread_z", "volume_z")
    """Features left out of the regime embedding: those with a long memory still describe
    the previous regime right after a shift (the label is always included; calendar features
    never are)."""


class MetricsSettings(Section):
    """The HTTP port with /metrics, /livez and /readyz."""

    enabled: bool = True
    """Serve the HTTP endpoints."""
    host: str = "0.0.0.0"
    """Interface to bind."""
    port: int = Field(9464, ge=0, le=65535)
    """Port to bind (0 picks a free one)."""
    write_wait_unready_s: float = Field(10.0, ge=0)
    """A write to Kafka or Redis (or a Redis read the daemon waits on) that has not gone
    through for this long, failing and retried (Redis out of memory, a broker refusing
    writes) or unanswered (a broker that stopped), fails /readyz (check writes_succeeding)
    until it does; adaptd_write_wait_seconds says for how long. 0 turns the check off."""


class StateSettings(Section):
    """How much per-stream state the daemon holds: in memory, and in Redis."""

    max_live_streams: int = Field(10_000, ge=1)
    """Streams held in memory by this daemon. Beyond it, after each commit, the least
    recently used are evicted to their partition's snapshot in Redis (those with an
    adaptation in flight stay) and restored on their next event (adaptd_stream_evictions_total,
    adaptd_stream_restores_total)."""
    max_stored_streams: int = Field(100_000, ge=1)
    """Streams kept per partition snapshot in Redis, in memory or evicted. Beyond it the
    evicted streams seen longest ago are deleted (adaptd_streams_forgotten_total): one that
    comes back warms up again, as a new stream does."""
    restore_chunk: int = Field(500, ge=1, le=100_000)
    """Streams read from Redis per round trip, and decoded per hop to a thread, when a
    partition is restored: the event loop (and the consumer group's heartbeat on it) never
    waits for a whole partition."""
    read_pickled_snapshots: bool = False
    """Also read the stream states that an earlier adaptd stored as pickles without a seal,
    and its pickled meta-learner checkpoint: for the first restart after upgrading from a
    version before the typed formats. Unpickling runs whatever the pickle names, so whoever
    can write to Redis could run code in the daemon meanwhile; pickled states sealed with
    this daemon's key are read without it. Each state read is stored in today's typed format
    at its stream's next save (docs/security.md)."""


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def _readable(path: Path) -> Path:
    read_file(path)
    return path


ReadableFile = Annotated[Path, AfterValidator(_readable)]
"""A file the daemon must be able to read, checked when the settings load (a CA bundle, a
certificate, a key), so that a wrong path stops the daemon with its setting's name."""
