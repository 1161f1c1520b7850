"""What a scenario left in the output topics, checked: every bad record dead-lettered, and
the policy topic's versions, chains and signatures (:mod:`.invariants` holds the pure
checks; this reads the topics and files the figures)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from adaptd.daemon.core.policy import PolicyError, decode_message
from adaptd.daemon.core.signing import SignatureError

from .feed import Feed, read_topic
from .invariants import Check, PolicyRecord, check_dead_letters, check_policies
from .stage import TOPICS, Stage

__all__ = ["check_outputs"]


async def check_outputs(stage: Stage, feed: Feed) -> list[Check]:
    """The dead-letter and policy invariants, from the topics."""
    bootstrap = stage.broker.bootstrap
    dead = await read_topic(bootstrap, TOPICS["deadletter"])
    found = []
    for r in dead:
        source = json.loads(r.value)["source"]
        found.append((int(source["partition"]), int(source["offset"])))
    checks = [check_dead_letters(feed.bad, found)]
    raw = await read_topic(bootstrap, TOPICS["policies"])
    records, refused, chain = [], 0, []
    for r in raw:
        try:
            stage.keyring.verify(r.value, r.headers)
            m = decode_message(r.value)
            m.weight_bytes()  # the checksum
        except (SignatureError, PolicyError, ValueError):
            refused += 1
            continue
        kind = "baseline" if m.validation else "adapted"
        records.append(
            PolicyRecord(m.model_id, m.version, m.parent_version, m.sha256, r.offset, kind)
        )
        chain.append(
            {
                "partition": r.partition,
                "offset": r.offset,
                "model": m.model_id,
                "version": m.version,
                "parent_version": m.parent_version,
                "kind": kind,
                "shift": m.shift.id if m.shift is not None else None,
                "created_ms": m.created_ms,
                "sha256": m.sha256[:16],
            }
        )
    # The policy topic as read, one line per message: the evidence behind the chain check.
    (stage.folder / "policies.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chain))
    checks += check_policies(records)
    checks.append(
        Check(
            "every policy signed and intact",
            refused == 0 and bool(raw),
            f"{len(raw)} policies, {refused} refused (signature or checksum)",
        )
    )
    _file_figures(stage.result.figures, feed, checks, found, len(raw), chain)
    return checks


def _file_figures(
    f: dict[str, Any],
    feed: Feed,
    checks: list[Check],
    found: list[tuple[int, int]],
    published: int,
    chain: list[dict[str, Any]],
) -> None:
    f["events_fed"] = len(feed.acked)
    f["feed_send_failures"] = feed.failed
    f["dead_letters_expected"] = len(feed.bad)
    f["dead_letters_found"] = len(found)
    f["dead_letter_duplicates"] = checks[0].figures["duplicates"]
    f["policies_published"] = published
    f["policy_models"] = checks[1].figures["models"]
    f["policy_duplicates"] = checks[1].figures["duplicates"]
    f["policy_conflicts"] = checks[1].figures["conflicts"]
    f["forks"] = checks[2].figures["forks"]
    if checks[2].figures["fork_kinds"]:
        f["forks_by_kind"] = checks[2].figures["fork_kinds"]
    # At-least-once processing after a crash can detect a shift again and adapt for it
    # again (on top of its own earlier policy): counted here, not a failure.
    shifts = Counter((c["model"], c["shift"]) for c in chain if c["shift"] is not None)
    again = {f"{m} {sid}": n for (m, sid), n in shifts.items() if n > 1}
    f["shifts_published_more_than_once"] = len(again)
    if again:
        f["shifts_published_more_than_once_list"] = dict(list(again.items())[:20])
    f["version_gaps"] = checks[2].figures["gaps"]
