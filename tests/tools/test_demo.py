from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from matplotlib.image import imread

from adaptd.adapters.tasks.series import load_all
from adaptd.daemon.service.outcomes import AdaptationRecord
from adaptd.tools.demo import Watch, _summaries, run_demo
from adaptd.tools.report import plot_stream


def kept(stream: str, *, published: bool, index: int, version: int) -> AdaptationRecord:
    return AdaptationRecord(
        stream=stream,
        shift_id=f"{stream}@in:0:{index}",
        published=published,
        version=version,
        index=index,
        seconds=0.004,
        query_loss_before=1.0,
        query_loss_after=0.5,
        query_loss_scratch=0.75,
        shift_to_publish_s=0.05,
    )


def test_summaries_place_each_publication_at_its_streams_event_count(tmp_path: Path) -> None:
    series = load_all()
    btc, brent = series[0].stream, series[1].stream
    history = [
        kept(btc, published=True, index=120, version=1),
        kept(brent, published=False, index=300, version=0),
        kept(btc, published=True, index=480, version=2),
    ]
    daemon = SimpleNamespace(publisher=SimpleNamespace(history=history))
    watch = Watch()
    watch.shifts[btc] += [110, 470]
    watch.policies[btc] = 2
    totals = {s.stream: 600 for s in series}
    rows = {r.stream: r for r in _summaries(series, totals, daemon, watch)}  # type: ignore[arg-type]

    assert rows[btc].published_rows == [120, 480]
    assert (rows[btc].published, rows[btc].rejected, rows[btc].shifts) == (2, 0, [110, 470])
    assert (rows[brent].published_rows, rows[brent].rejected) == ([], 1)
    assert rows[btc].adapt_latency_ms == [4.0, 4.0]
    assert all(a < 600 for a in rows[btc].annotated)
    image = imread(plot_stream(series[0], rows[btc], tmp_path / "btc.png"))
    assert image.shape[0] > 100


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The demo configures logging for the whole process (warnings only): later tests
    capture info lines, so the configuration before it comes back."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("logging_restored")
def test_the_demo_runs_end_to_end_and_writes_a_plot_per_stream(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert run_demo(speed=20_000.0, out=out, limit=900, progress=False) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(f"{s.name}.png" for s in load_all())
