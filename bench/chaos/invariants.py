"""The invariants a fault must not break, as pure functions of what the topics and the group
say after the run (no broker, no Redis: the unit tests call them on hand-made inputs).

- :func:`check_offsets`: the group's committed offset reached the end of every partition
  the feed wrote to (everything up to it was processed or dead-lettered).
- :func:`check_dead_letters`: every bad record's (partition, offset) is in the dead-letter
  topic; duplicates (redelivery after a crash) are allowed and counted, a missing one is a
  failure, a dead letter for a record that was not bad is reported.
- :func:`check_commits_stored`: no committed offset ahead of its partition's snapshot in
  Redis, in any sample taken while faults ran (the daemon stores a partition's snapshot
  with the offset, then commits that offset: a commit past the stored snapshot is one whose
  state a restart would not find).
- :func:`check_policies`: per model, versions strictly increase in topic order, and the
  chain is linear (sorted by version, each message's ``parent_version`` is the previous
  published version of that model, 0 for the first). Duplicates (the same version twice,
  same weights), conflicts (the same version with other weights), forks and version gaps
  are counted and listed, never hidden.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Check",
    "PolicyRecord",
    "check_commits_stored",
    "check_dead_letters",
    "check_offsets",
    "check_policies",
    "percentiles",
]


@dataclass(frozen=True)
class Check:
    """One invariant's verdict, with the figures behind it."""

    name: str
    ok: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **self.figures}


@dataclass(frozen=True)
class PolicyRecord:
    """What the chain check needs of one policy message, in topic order."""

    model_id: str
    version: int
    parent_version: int
    sha256: str = ""
    offset: int = -1
    kind: str = ""
    """What published it, for the report: "adapted", or "baseline" (a retired policy's
    replacement)."""


def check_offsets(ends: Mapping[int, int], committed: Mapping[int, int]) -> Check:
    """``ends``: per partition, one past the last offset the feed wrote; ``committed``: the
    group's committed offset per partition (-1 or absent: none)."""
    short = {
        p: {"end": end, "committed": committed.get(p, -1)}
        for p, end in sorted(ends.items())
        if committed.get(p, -1) < end
    }
    records = sum(ends.values())
    missing = sum(v["end"] - max(v["committed"], 0) for v in short.values())
    if short:
        detail = f"{missing} of {records} offsets not committed: {short}"
    else:
        detail = f"commits reach the end of all {len(ends)} partitions ({records} records)"
    return Check(
        "every input offset processed or dead-lettered",
        not short,
        detail,
        {"records": records, "uncommitted": missing, "short_partitions": short},
    )


def check_dead_letters(
    expected: Iterable[tuple[int, int]], found: Iterable[tuple[int, int]]
) -> Check:
    """``expected``: the (partition, offset) of every bad record; ``found``: the source
    (partition, offset) of every dead letter in the topic, duplicates included."""
    want = set(expected)
    counts = Counter(found)
    missing = sorted(want - set(counts))
    unexpected = sorted(set(counts) - want)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    ok = not missing and not unexpected
    detail = (
        f"expected {len(want)}, found {len(set(counts) & want)} distinct, "
        f"{duplicates} duplicates (allowed), {len(missing)} missing, "
        f"{len(unexpected)} unexpected"
    )
    if missing:
        detail += f"; first missing {missing[:5]}"
    if unexpected:
        detail += f"; first unexpected {unexpected[:5]}"
    return Check(
        "every bad record dead-lettered",
        ok,
        detail,
        {
            "expected": len(want),
            "found": sum(counts.values()),
            "distinct": len(set(counts) & want),
            "duplicates": duplicates,
            "missing": missing[:50],
            "unexpected": unexpected[:50],
        },
    )


def check_commits_stored(
    samples: Iterable[tuple[Mapping[int, int], Mapping[int, int | None]]],
) -> Check:
    """Each sample: the group's committed offset per partition (-1: none), then the offset
    of the partition's snapshot in Redis (None: no snapshot), read in that order, so a
    snapshot written between the two reads can only make the snapshot look further ahead."""
    n = 0
    ahead: list[dict[str, Any]] = []
    for i, (committed, stored) in enumerate(samples):
        n += 1
        for p, offset in sorted(committed.items()):
            snapshot = stored.get(p)
            if offset >= 0 and (snapshot is None or offset > snapshot):
                ahead.append({"sample": i, "partition": p, "committed": offset, "stored": snapshot})
    detail = f"{n} samples, {len(ahead)} commits ahead of the stored snapshot"
    if ahead:
        detail += f"; first {ahead[:3]}"
    return Check(
        "no offset committed ahead of its stored snapshot",
        not ahead and n > 0,
        detail if n else "no sample taken",
        {"samples": n, "ahead": len(ahead), "ahead_list": ahead[:50]},
    )


def check_policies(records: Iterable[PolicyRecord]) -> list[Check]:
    """Two checks: versions strictly increasing per model in topic order, and each model's
    chain linear."""
    by_model: dict[str, list[PolicyRecord]] = defaultdict(list)
    for r in records:
        by_model[r.model_id].append(r)
    regressions: list[dict[str, Any]] = []  # a lower version after a higher one
    duplicates = 0  # the same version again, same weights: a redelivered publication
    conflicts: list[dict[str, Any]] = []  # the same version again with other weights
    forks: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    total = 0
    for model, mine in sorted(by_model.items()):
        total += len(mine)
        highest = 0
        first_of: dict[int, PolicyRecord] = {}
        for r in mine:
            if r.version in first_of:
                if first_of[r.version].sha256 == r.sha256:
                    duplicates += 1
                else:
                    conflicts.append({"model": model, "version": r.version, "offset": r.offset})
            elif r.version < highest:
                regressions.append(
                    {"model": model, "version": r.version, "after": highest, "offset": r.offset}
                )
            if r.version not in first_of:
                first_of[r.version] = r
            highest = max(highest, r.version)
        # The chain: by version, each distinct version's parent is the previous one published
        # (0, the meta-learned initialisation, for the first). Every copy of a version is
        # checked, so a conflicting copy with another parent is a fork too.
        previous = 0
        for version in sorted(first_of):
            for r in (x for x in mine if x.version == version):
                if r.parent_version != previous:
                    fork = {
                        "model": model,
                        "version": version,
                        "parent_version": r.parent_version,
                        "previous_published": previous,
                        "offset": r.offset,
                    }
                    if r.kind:
                        fork["kind"] = r.kind
                        before = first_of.get(previous)
                        fork["previous_kind"] = before.kind if before is not None else ""
                    forks.append(fork)
            if version != previous + 1:
                gaps.append({"model": model, "after": previous, "version": version})
            previous = version
    increasing_ok = not regressions and not conflicts
    increasing = Check(
        "policy versions strictly increasing per model",
        increasing_ok,
        f"{total} policies of {len(by_model)} models: {duplicates} duplicates "
        f"(same version and weights, allowed), {len(conflicts)} conflicting "
        f"(same version, other weights), {len(regressions)} out of order"
        + (f"; first conflicts {conflicts[:3]}" if conflicts else "")
        + (f"; first out of order {regressions[:3]}" if regressions else ""),
        {
            "policies": total,
            "models": len(by_model),
            "duplicates": duplicates,
            "conflicts": len(conflicts),
            "out_of_order": len(regressions),
            "conflict_list": conflicts[:50],
            "out_of_order_list": regressions[:50],
        },
    )
    kinds = Counter(
        f"{f.get('kind', '?')} after {f.get('previous_kind', '?')}" for f in forks if "kind" in f
    )
    linear = Check(
        "each model's chain linear",
        not forks,
        f"{len(forks)} forks, {len(gaps)} version gaps (a version never published: allowed)"
        + (f"; forks by kind: {dict(kinds)}" if kinds else "")
        + (f"; first forks {forks[:3]}" if forks else ""),
        {
            "forks": len(forks),
            "fork_kinds": dict(kinds),
            "fork_list": forks[:50],
            "gaps": len(gaps),
            "gap_list": gaps[:50],
        },
    )
    return [increasing, linear]


def percentiles(values: Iterable[float]) -> dict[str, float | int]:
    """n, p50 and max (nearest-rank p50), for the small samples here."""
    data = sorted(values)
    if not data:
        return {"n": 0}
    return {"n": len(data), "p50": data[(len(data) - 1) // 2], "max": data[-1]}
