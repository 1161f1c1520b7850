"""The detector factory: every name builds its detector with the parameters given, and the
``detection`` settings' defaults are the detector classes' own."""

from __future__ import annotations

import pytest

from adaptd.daemon.config.sections import DetectionSettings
from adaptd.daemon.core.detectors.bocpd import BOCPD
from adaptd.daemon.core.detectors.cusum import Cusum
from adaptd.daemon.core.detectors.factory import DETECTORS, DetectorParams, make_detector
from adaptd.daemon.core.detectors.focus import Focus
from adaptd.daemon.core.detectors.resegment import Resegment
from adaptd.daemon.core.detectors.river import RiverDetector


def test_the_settings_defaults_are_the_detector_classes_defaults() -> None:
    assert DetectorParams.of(DetectionSettings()) == DetectorParams()
    cusum, focus, bocpd, resegment = Cusum(), Focus(), BOCPD(), Resegment()
    params = DetectorParams()
    assert params.cusum_false_alarms_per_10k == cusum.false_alarms_per_10k
    assert params.focus_false_alarms_per_10k == focus.false_alarms_per_10k
    assert (params.bocpd_expected_run, params.bocpd_threshold) == (
        bocpd.expected_run,
        bocpd.threshold,
    )
    assert (
        params.resegment_penalty,
        params.resegment_stable,
        params.resegment_window,
        params.resegment_trend_penalty,
    ) == (resegment.penalty, resegment.stable, resegment.window, resegment.trend_penalty)


def test_settings_other_than_the_defaults_reach_the_detectors() -> None:
    settings = DetectionSettings(
        cusum_false_alarms_per_10k=5.0,
        bocpd_threshold=0.97,
        resegment_penalty=12.0,
        resegment_window=500,
        resegment_trend_penalty=0.25,
    )
    params = DetectorParams.of(settings)
    assert make_detector("cusum", params).false_alarms_per_10k == 5.0  # type: ignore[attr-defined]
    assert make_detector("bocpd", params).threshold == 0.97  # type: ignore[attr-defined]
    reseg = make_detector("resegment", params)
    assert (reseg.penalty, reseg.window, reseg.trend_penalty) == (12.0, 500, 0.25)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", DETECTORS)
def test_every_name_builds_a_detector_of_that_name(name: str) -> None:
    detector = make_detector(name, DetectorParams())
    assert detector.name == name
    assert isinstance(detector, RiverDetector) == (name in ("adwin", "page_hinkley"))


def test_an_unknown_name_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown detector 'kswin'"):
        make_detector("kswin", DetectorParams())
