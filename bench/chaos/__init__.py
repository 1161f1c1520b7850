"""``make chaos`` (``python -m bench.chaos``): a bounded, loopback-only fault suite (issue 12).

Each scenario starts its own Tansu broker, its own redis-server with an append-only file
(``appendfsync everysec``) and ``adaptd run`` as child processes, feeds 4 streams with
regime changes and a malformed record every 97th at a fixed rate (400 records/s; the last
two scenarios feed more streams, faster), injects its faults, drains, stops the daemon
with SIGTERM and checks the invariants (:mod:`.invariants`):

1. ``sigkill``: the daemon SIGKILLed 20 times, 1-4 s after each start's /readyz 200, and
   restarted each time.
2. ``redis``: Redis paused (SIGSTOP) for 10 s, later SIGKILLed and restarted on the same
   port and folder (its AOF).
3. ``broker``: the broker paused for 10 s. Tansu keeps everything in memory, so it is never
   restarted (a restart would lose the topics).
4. ``redis_full``: Redis started with a small ``maxmemory`` and ``noeviction``; the feed fills
   it until it refuses writes (OOM), it stays full for 70 s (past the daemon's 60 s stall
   watch), then ``CONFIG SET maxmemory`` raises the limit.
5. ``netcut``: a loopback TCP proxy between the daemon and the broker (which advertises the
   proxy's port) and another before Redis cut the daemon's connections (reset, new ones
   refused) for 10 s: the broker link, the Redis link, then both.
6. ``learner``: no fault; a daemon that adapts continuously (:mod:`.churn`: 96 streams, a
   new regime every 80 events of each, 1000 records/s, a 30-event cool-down, meta-training
   every 0.5 s) for 120 s, its /metrics read every 0.1 s: event-loop lag p50/p99/max (p99
   must be under 100 ms), adaptations done (one at least every 10 s after the first), and
   the consumer group must never take its partitions back (its log).
7. ``soak``: the same daemon at 3000 records/s until it has done 10,000 adaptations
   (``--soak-adaptations``; about 17 a second here, at most ``--soak-timeout`` 1200 s), its
   RSS, descriptors and threads (/proc), its learner's RSS and its asyncio tasks
   (``adaptd_event_loop_tasks``) read every 2 s and reported at the start, the quarter
   points and the end; the last quarter's maximum of each must not exceed the second
   quarter's by more than a margin stated in :data:`.soak.BOUNDS`.

Invariants: every input offset committed up to the end, every bad record dead-lettered
(duplicates counted), policy versions strictly increasing per model in topic order, each
model's chain linear (forks counted, never hidden), policies signed; in ``redis_full`` and
``netcut`` also no offset committed ahead of its partition's snapshot in Redis (sampled
every 0.25 s); plus per scenario the recovery (time to ready after a restart, time for
processing to resume and to catch up after a fault). A daemon that misbehaves leaves
evidence: its log, the time, ``py-spy dump``. Prints a table and a PASS/FAIL line per
invariant per scenario and writes docs/bench/chaos.json; exits 1 when an invariant fails.
Not part of ``make test``; about 23 minutes on 2 cores, 10 of them the soak (each scenario
is time-boxed: a hang fails it with evidence instead of stalling the suite).
"""
