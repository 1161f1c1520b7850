"""The synthetic risk regime of ``make bench-risk-regimes``: what its stream is, and a short
replay scored end to end."""

from __future__ import annotations

import numpy as np

from bench.markets.risk_regimes import SETTINGS, K, score, summary, table, volume_leads_variance


def test_the_volume_keeps_its_distribution_and_starts_to_predict_the_variance() -> None:
    calm, loud = 4000, 4000
    s = volume_leads_variance("V", calm, loud, seed=3)
    r = np.diff(np.log(s.price))  # r[i] is the return into event i + 1
    high = s.volume[:-1] > 3000.0  # the volume printed just before that return
    log_volume = np.log(s.volume)
    # The same volumes on both sides of the change: half of them high.
    assert abs(log_volume[:calm].mean() - log_volume[calm:].mean()) < 0.1
    assert abs(high[:calm].mean() - 0.5) < 0.03
    before, after = np.arange(len(r)) < calm - 1, np.arange(len(r)) >= calm - 1
    ratio_before = r[before & high].var() / r[before & ~high].var()
    ratio_after = r[after & high].var() / r[after & ~high].var()
    assert 0.85 < ratio_before < 1.15  # the volume says nothing
    assert 0.7 * K**2 < ratio_after < 1.3 * K**2  # then it says k squared


def test_a_short_replay_is_scored_from_the_first_publication_after_the_change() -> None:
    row = score(0, SETTINGS["reptile, 60 shots, 20 steps of 0.2"], calm=700, loud=500)
    assert row["shift"] is not None and row["shift"] >= 690
    assert row["published"] >= 1
    q = row["qlike"]
    assert set(q) == {"live", "init", "reference", "oracle"}
    assert q["oracle"] < q["reference"]  # the true variance is the best forecast there is
    assert row["from"] > 700
    s = summary([row, {"seed": 1, "shift": None, "published": 0, "adaptations": 0}])
    assert s["seeds"] == 2 and s["published"] == 1
    assert s["beats_init"] == int(q["live"] < q["init"])
    text = table("x", [row])
    assert "| 0 |" in text and "Published after the change on 1 of 1 seeds" in text
