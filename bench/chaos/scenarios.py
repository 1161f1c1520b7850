"""The scenarios by name, in the order ``make chaos`` runs them. Each owns its broker, its
Redis (AOF) and its daemons, runs a steady feed, injects its faults, drains, stops the daemon
with SIGTERM and checks the invariants of :mod:`.invariants` on what the topics and the group
hold:

- :mod:`.sigkill`: the daemon SIGKILLed and restarted, again and again;
- :mod:`.pauses`: Redis paused, then killed and restarted; the broker paused;
- :mod:`.redis_full`: Redis out of memory (``maxmemory``, ``noeviction``), then given more;
- :mod:`.netcut`: the daemon's connections to the broker, to Redis, then to both cut by a
  proxy (:mod:`.proxy`) and refused, then let through again;
- :mod:`.learner`: no fault but continuous adaptation, the event loop's lag sampled;
- :mod:`.soak`: 10,000 adaptations, the daemon's memory, descriptors and tasks sampled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .learner import learner_scenario
from .netcut import netcut_scenario
from .pauses import broker_scenario, redis_scenario
from .redis_full import redis_full_scenario
from .sigkill import sigkill_scenario
from .soak import soak_scenario
from .stage import Options, Result

__all__ = ["SCENARIOS", "Options", "Result"]

SCENARIOS: dict[str, Callable[[Options], Awaitable[Result]]] = {
    "sigkill": sigkill_scenario,
    "redis": redis_scenario,
    "broker": broker_scenario,
    "redis_full": redis_full_scenario,
    "netcut": netcut_scenario,
    "learner": learner_scenario,
    "soak": soak_scenario,
}
