from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.image import imread
from rich.console import Console

from adaptd.adapters.tasks.series import load, load_all
from adaptd.tools.report import (
    StreamSummary,
    margin_for,
    plot_stream,
    score_shifts,
    summary_table,
)


def test_detection_at_or_after_the_point_within_margin_is_a_hit() -> None:
    for detection in (100, 105, 110):
        score = score_shifts([detection], [100], margin=10)
        assert (score.hits, score.misses, score.false_alarms) == (1, 0, 0)
        assert score.mean_delay == detection - 100
        assert (score.precision, score.recall, score.f1) == (1.0, 1.0, 1.0)


def test_late_detection_is_a_miss_and_a_false_alarm() -> None:
    score = score_shifts([111], [100], margin=10)
    assert (score.hits, score.misses, score.false_alarms) == (0, 1, 1)
    assert score.mean_delay is None
    assert (score.precision, score.recall, score.f1) == (0.0, 0.0, 0.0)


def test_early_detection_misses_unless_tolerated() -> None:
    assert score_shifts([98], [100], margin=10).hits == 0
    assert score_shifts([98], [100], margin=10, early=1).hits == 0
    tolerated = score_shifts([98], [100], margin=10, early=2)
    assert tolerated.hits == 1
    assert tolerated.mean_delay == -2


def test_double_detection_counts_once() -> None:
    score = score_shifts([102, 104], [100], margin=10)
    assert (score.hits, score.misses, score.false_alarms) == (1, 0, 1)
    assert score.mean_delay == 2
    assert score.precision == 0.5


def test_one_detection_serves_one_annotation() -> None:
    score = score_shifts([105], [100, 103], margin=10)
    assert (score.hits, score.misses, score.false_alarms) == (1, 1, 0)
    both = score_shifts([105, 106], [100, 103], margin=10)
    assert both.hits == 2
    assert both.mean_delay == pytest.approx(((105 - 100) + (106 - 103)) / 2)


def test_empty_cases() -> None:
    assert score_shifts([], [], margin=5)[3:6] == (1.0, 1.0, 1.0)
    nothing_found = score_shifts([], [10], margin=5)
    assert (nothing_found.misses, nothing_found.recall, nothing_found.f1) == (1, 0.0, 0.0)
    only_alarms = score_shifts([10], [], margin=5)
    assert (only_alarms.false_alarms, only_alarms.precision) == (1, 0.0)


def test_negative_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="margin"):
        score_shifts([1], [1], margin=-1)
    with pytest.raises(ValueError, match="early=-1"):
        score_shifts([1], [1], margin=1, early=-1)


def max_matching(detected: list[int], annotated: list[int], lo: int, hi: int) -> int:
    """Maximum bipartite matching by augmenting paths, for comparison with the greedy one."""
    owner: dict[int, int] = {}

    def augment(a: int, seen: set[int]) -> bool:
        for j, d in enumerate(detected):
            if annotated[a] - lo <= d <= annotated[a] + hi and j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = a
                    return True
        return False

    return sum(augment(a, set()) for a in range(len(annotated)))


@settings(max_examples=200, deadline=None)
@given(
    detected=st.lists(st.integers(0, 60), max_size=12),
    annotated=st.lists(st.integers(0, 60), max_size=8),
    margin=st.integers(0, 15),
    early=st.integers(0, 4),
)
def test_matching_is_maximal_and_consistent(
    detected: list[int], annotated: list[int], margin: int, early: int
) -> None:
    score = score_shifts(detected, annotated, margin, early=early)
    points = sorted(set(annotated))
    assert score.hits == max_matching(detected, points, early, margin)
    assert score.hits + score.misses == len(points)
    assert score.hits + score.false_alarms == len(detected)
    assert score_shifts(detected, annotated, margin + 1, early=early).hits >= score.hits
    if score.hits:
        assert score.mean_delay is not None
        assert -early <= score.mean_delay <= margin


def test_margin_for_maps_the_tcpd_margin_to_full_rows() -> None:
    apple, brent, bitcoin = load("apple"), load("brent"), load("bitcoin")
    assert margin_for(apple) == 5 * 3
    assert margin_for(brent) == 5 * 10
    assert margin_for(bitcoin) == 5
    assert margin_for(brent, tcpd_margin=2) == 20


def summary(stream: str = "AAPL", name: str = "apple", **extra: object) -> StreamSummary:
    fields: dict = {"events": 1867, "shifts": [960, 1300], "annotated": (958, 1210)}
    fields.update(extra)
    return StreamSummary(stream, name, **fields)


def render(table: object) -> str:
    console = Console(record=True, width=260)
    console.print(table)
    return console.export_text()


def test_summary_table_shows_every_stream() -> None:
    rows = [
        summary(
            published=3,
            rejected=1,
            adapt_latency_ms=[10.0, 20.0, 30.0, 400.0],
            loss_before=[0.5, 0.7],
            loss_after=[0.2, 0.4],
        ),
        summary("BRENT", "brent", events=8195, shifts=[], annotated=(5390,)),
    ]
    text = render(summary_table(rows, margin={"AAPL": 15, "BRENT": 50}))
    apple_line = next(line for line in text.splitlines() if "AAPL (apple)" in line)
    brent_line = next(line for line in text.splitlines() if "BRENT (brent)" in line)
    p50, p99 = np.percentile([10.0, 20.0, 30.0, 400.0], [50, 99])
    assert f"{p50:.1f} / {p99:.1f}" in apple_line
    assert "0.6 → 0.3" in apple_line
    assert "1/2 (≤15)" in apple_line
    assert "1,867" in apple_line
    assert "0/1 (≤50)" in brent_line
    assert brent_line.count("–") == 3  # no latency, no losses, no from-scratch baseline
    assert "query loss before → after" in text


def test_summary_table_with_one_margin_and_no_annotations() -> None:
    text = render(summary_table([summary(annotated=())], margin=0))
    line = next(line for line in text.splitlines() if "AAPL" in line)
    assert "–" in line


@pytest.mark.parametrize("name", ["apple", "bitcoin"])
def test_plot_stream_writes_a_png(tmp_path: Path, name: str) -> None:
    series = load(name)
    annotated = series.annotated_rows()
    row = summary(
        series.stream,
        name,
        events=len(series),
        shifts=[a + 2 for a in annotated],
        annotated=annotated,
        published_rows=[a + 4 for a in annotated],
    )
    out = plot_stream(series, row, tmp_path / "plots" / f"{name}.png")
    assert out == tmp_path / "plots" / f"{name}.png"
    image = imread(out)
    height, width = image.shape[:2]
    assert 300 <= height <= 2000
    assert 800 <= width <= 3000
    assert image[..., :3].std() > 0.05  # something was drawn


def test_plot_stream_with_a_partial_feed_and_nothing_detected(tmp_path: Path) -> None:
    brent = load_all()[1]
    row = StreamSummary("BRENT", "brent", events=500, annotated=brent.annotated_rows())
    image = imread(plot_stream(brent, row, tmp_path / "brent.png", margin=0, early=3))
    assert image.shape[0] > 100
