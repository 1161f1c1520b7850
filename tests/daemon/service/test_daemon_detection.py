"""Detectors from the protocol in the running daemon (real Tansu broker and Redis): two known
changes give two shifts near them, each with where the change was estimated to begin, in the
shift messages and in the policies adapted after them."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from daemon_support import read_topic, run_over, segments_stream

from adaptd.daemon.core.policy import decode_message

pytestmark = pytest.mark.integration

# Calm, then a drift of 1.5 standard deviations an event from 700, then three times the
# volatility from 1400. The market channels alone, so the shifts do not depend on timing.
SEGMENTS = [(700, 0.0, 0.001), (700, 0.0015, 0.001), (600, 0.0, 0.003)]
CHANGES = (700, 1400)


@pytest.mark.parametrize("detector", ["cusum", "resegment"])
async def test_two_changes_give_two_shifts_that_say_where_each_began(
    settings_factory, detector: str
) -> None:
    settings, topics = await settings_factory(
        detection={"detectors": [detector], "channels": ["returns", "volatility"], "skip": []},
        kafka={"max_poll_records": 50},
    )
    bootstrap = settings.kafka.bootstrap_servers
    daemon = await run_over(settings, topics.input, segments_stream("S", SEGMENTS, seed=3))

    shifts = [
        msgspec.json.decode(r.value) for r in await read_topic(bootstrap, topics.shifts, idle_s=1.0)
    ]
    assert [s["triggers"][0].split(":")[0] for s in shifts] == [detector, detector], shifts
    for shift, change in zip(shifts, CHANGES, strict=True):
        # Raised after the change, placed within a few events of where it began.
        assert change <= shift["index"] < change + 60, shift
        assert abs(shift["change_index"] - change) <= 10, shift
        assert shift["change_index"] <= shift["first_index"] <= shift["index"]
    # The detection delay each shift's location implies, as a metric.
    sample = daemon.metrics.registry.get_sample_value
    assert sample("adaptd_detection_delay_events_count", {"detector": detector}) == 2
    delays = sum(s["index"] - s["change_index"] for s in shifts)
    assert sample("adaptd_detection_delay_events_sum", {"detector": detector}) == delays

    messages = [decode_message(r.value) for r in await read_topic(bootstrap, topics.policies)]
    adapted = [m for m in messages if m.shift is not None]  # not a retirement's baseline
    assert adapted, "no policy was adapted after the shifts"
    located = {s["id"]: s["change_index"] for s in shifts}
    for message in adapted:
        assert message.shift is not None
        assert message.shift.change_index == located[message.shift.id]
        # Adapted from the examples since the change began, which had matured by then.
        assert message.source["first_offset"] >= message.shift.change_index


async def test_the_same_input_gives_the_same_shifts_whatever_the_batches(
    settings_factory,
) -> None:
    # Twice on fresh topics, Redis keys and consumer groups, in batches of different sizes,
    # so events meet the learner's results at different points. The market channels depend
    # on the events alone; the error channel, which scores the live policy, would not (see
    # docs/detection.md, "Reproducibility"). The two daemons run side by side.
    events = segments_stream("S", SEGMENTS, seed=3)

    async def shifts_in_batches_of(batch: int) -> list[tuple]:
        settings, topics = await settings_factory(
            detection={"detectors": ["bocpd", "adwin"], "channels": ["returns", "volatility"]},
            kafka={"max_poll_records": batch},
        )
        await run_over(settings, topics.input, events)
        records = await read_topic(settings.kafka.bootstrap_servers, topics.shifts, idle_s=1.0)
        shifts = [msgspec.json.decode(r.value) for r in records]
        return [(s["index"], s["change_index"], s["first_index"], s["triggers"]) for s in shifts]

    runs = await asyncio.gather(shifts_in_batches_of(17), shifts_in_batches_of(200))
    assert len(runs[0]) >= 2
    assert runs[0] == runs[1]


async def test_confirmed_shifts_are_the_same_whatever_the_batches(settings_factory) -> None:
    # Confirmation runs off the event loop, at the end of whichever batch holds the shift's
    # release; what it sees is fixed by the events, so the shifts are too. The two daemons
    # run side by side.
    events = segments_stream("S", SEGMENTS, seed=3)

    async def shifts_in_batches_of(batch: int) -> list[tuple]:
        settings, topics = await settings_factory(
            detection={
                "detectors": ["cusum"],
                "channels": ["returns", "volatility"],
                "skip": [],
                "confirm": True,
            },
            kafka={"max_poll_records": batch},
        )
        daemon = await run_over(settings, topics.input, events)
        records = await read_topic(settings.kafka.bootstrap_servers, topics.shifts, idle_s=1.0)
        shifts = [msgspec.json.decode(r.value) for r in records]
        sample = daemon.metrics.registry.get_sample_value
        counted = {
            outcome: sample("adaptd_shift_confirmations_total", {"outcome": outcome}) or 0.0
            for outcome in ("confirmed", "relocated", "retracted")
        }
        assert counted["confirmed"] + counted["relocated"] == len(shifts)
        return [(s["index"], s["change_index"], s["first_index"], s["triggers"]) for s in shifts]

    runs = await asyncio.gather(shifts_in_batches_of(17), shifts_in_batches_of(200))
    for index, change_index, first_index, _ in runs[0]:
        # Released once 10 events followed the detector's estimate (which the segmentation
        # may then move a little later).
        assert index >= first_index and index >= change_index + 5
    assert all(min(abs(r[1] - c) for r in runs[0]) <= 10 for c in CHANGES), runs[0]
    assert runs[0] == runs[1]
