"""What a policy learns: the small protocol every policy task implements.

A *policy task* says what a stream's policy predicts and how it is judged:

- **features in**: which of the stream's online features it reads (``features``; all by
  default);
- **the label**: a :class:`LabelRule` that remembers what it needs from the event an example
  is formed at (``anchor``) and gives the label ``horizon`` events later (``label``);
- **the loss** the learner adapts with (``loss``, one of the library's ``LOSSES``) and the
  same loss per example in numpy (``losses``), which scores policies prequentially and feeds
  the detectors' error channel;
- **the output head** (:class:`Head`): the network's output width, its output scale, and the
  link a subscriber applies to the raw output;
- **what the message says** about it (``describe``), so a subscriber can read a prediction
  without adaptd's code;
- **a baseline to score against** (``baseline``): a per-stream forecaster that needs no
  learning, scored prequentially next to the policies.

A task is one file in this folder (or a class named by an ``adaptd.tasks`` entry point, or
``module:Class`` in ``adaptation.tasks``); the registry (:mod:`.registry`) finds it, and the
stream, the replay buffer, the learner and the message format take it from there. A stream runs
every configured task side by side: one labeler, episode, adaptation set, regime book and live
policy per task (:mod:`adaptd.daemon.core.track`).

The calling loop, as a stream runs it for one task::

    rule, baseline = task.label_rule(), task.baseline()
    # per event: a labeler (adaptd.daemon.core.labels) holds rule.anchor(tick) with the
    # example formed now, and returns the example formed `horizon` events ago with
    # y = rule.label(anchor, tick)
    # per batch of matured examples (test, then train):
    live = task.losses(policy.predict(x), y)       # the live policy's per-example loss
    base = baseline.losses(y)                      # the baseline's, same examples
    # after a shift: `shots` examples form the adaptation set; the learner adapts a network
    # PolicyNet(len(features), hidden, out_dim=task.head.out_dim,
    #           output_scale=task.head.output_scale) with task.loss
    message["task"] = task.describe()

Pure: no I/O, no torch.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from adaptd.adapters.protocol import Loss

__all__ = [
    "LINKS",
    "Baseline",
    "Head",
    "LabelRule",
    "Link",
    "PolicyTask",
    "Tick",
    "input_names",
    "model_id",
    "qualified",
]

Link = Literal["identity", "softmax", "exp"]
LINKS: tuple[Link, ...] = ("identity", "softmax", "exp")


class Tick(Protocol):
    """A stream's state right after an event, as a label rule reads it
    (:class:`~adaptd.daemon.core.features.FeatureExtractor` after its ``update``)."""

    @property
    def log_price(self) -> float:
        """Log price of this event."""
        ...

    @property
    def ret(self) -> float:
        """Its log return."""
        ...

    @property
    def vol(self) -> float:
        """The slow EW volatility of log returns per event, including this one (> 0)."""
        ...

    @property
    def fast_var(self) -> float:
        """The fast EW mean of squared log returns per event, including this one (> 0)."""
        ...

    @property
    def ts_ms(self) -> int | None:
        """The event's time in epoch milliseconds, if it had one."""
        ...

    @property
    def sq_sum(self) -> float:
        """The running sum of squared log returns up to this event: the realised variance
        between two events is the difference of their sums."""
        ...


class LabelRule(Protocol):
    """How a task's label is made from the stream ``horizon`` events after an example."""

    horizon: int
    """Events between forming an example and knowing its label (>= 1)."""

    def anchor(self, tick: Tick) -> Any:
        """What the label will need from the event the example is formed at."""
        ...

    def label(self, anchor: Any, tick: Tick) -> float:
        """The example's label, from its ``anchor`` and the stream ``horizon`` events later
        (a float; a class id as a float for a classification task)."""
        ...

    # Optional: a rule with non-empty ``inputs`` (names) has ``extra()``, the values of those
    # inputs after the latest ``anchor``; they are appended to the example's features (the
    # strategy task's Hedge log-weights). Rules without ``inputs`` append nothing.


class Baseline(Protocol):
    """A forecaster that needs no learning, scored prequentially next to the policies."""

    name: str
    """What it is, for reports and messages (e.g. "zero forecast")."""
    constant_output: float | None
    """The raw network output whose forecast is the baseline's, when that is one constant
    (the zero forecast's 0; the EWMA variance's 0, a ratio of 1); then a policy retired for
    losing to the baseline is replaced by a network that outputs it. None: not expressible
    by a network, and policies are only scored against it."""

    def losses(self, y: np.ndarray) -> np.ndarray:
        """The baseline's per-example loss on labels ``y`` in event order: each label is
        forecast before the baseline sees it (test, then train). A baseline whose forecast
        is in the examples' inputs (``reads_inputs = True``, optional) takes them as
        ``losses(y, x)``."""
        ...


class Head(NamedTuple):
    """The policy network's output layer, and how a subscriber reads it."""

    out_dim: int
    """Output width: 1 for a regression, one logit a class for a classification."""
    output_scale: float
    """Scale of the last layer's initial weights: small, so a fresh policy predicts close to
    the no-skill forecast."""
    link: Link
    """Applied to the raw output by subscribers: "identity", "softmax" (probabilities) or
    "exp" (a positive multiplier, e.g. of a reference variance)."""
    skip: int = 0
    """0, or ``out_dim``: the network adds its last ``skip`` inputs to its outputs (the
    task's ``inputs``, an offset the policy corrects, as the strategy task's Hedge
    log-weights)."""


@runtime_checkable
class PolicyTask(Protocol):
    """What a policy learns. Instances are immutable and picklable."""

    name: ClassVar[str]
    """Registry name, in settings, metrics, logs and messages."""
    qualified: ClassVar[bool]
    """True (every task but the original return task) when model ids and Redis key prefixes
    carry the task's name (see :func:`model_id` and :func:`qualified`)."""
    loss: Loss
    """The loss the learner adapts and meta-trains with."""
    head: Head
    features: tuple[str, ...] | None
    """The stream features the policy reads, in order (None: all of them). A task may also
    have ``inputs`` (optional): names its rule appends after them (see :func:`input_names`)."""

    def label_rule(self) -> LabelRule:
        """A fresh label rule for one stream."""
        ...

    def losses(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example loss of raw network outputs (``(n,)``, or ``(n, out_dim)`` logits) against
        labels ``(n,)``: the numpy twin of ``loss``."""
        ...

    def baseline(self) -> Baseline:
        """A fresh baseline forecaster for one stream."""
        ...

    def describe(self) -> dict[str, Any]:
        """What a policy message says about the task (JSON-serialisable): at least ``name``,
        ``label``, ``loss``, ``output``, ``link`` and ``baseline``."""
        ...


def input_names(task: PolicyTask, features: tuple[str, ...]) -> tuple[str, ...]:
    """What the task's network reads, in order: the stream ``features`` it reads (all without
    its own ``features``), then the inputs its rule appends (``inputs``, optional).

    >>> from adaptd.daemon.core.tasks.selection import StrategyTask
    >>> task = StrategyTask(horizon=1, clip=10.0, trend=(2,), reversal=(), ensemble="hedge")
    >>> input_names(task, ("ret_z", "vol_ratio"))
    ('ret_z', 'vol_ratio', 'hedge_log_w_flat', 'hedge_log_w_long', 'hedge_log_w_trend_2')
    """
    own = features if task.features is None else tuple(task.features)
    return (*own, *getattr(task, "inputs", ()))


def qualified(base: str, task: PolicyTask, sep: str) -> str:
    """``base`` with the task's name appended after ``sep`` when the task is qualified.

    >>> from adaptd.daemon.core.tasks.returns import ReturnTask
    >>> qualified("adaptd", ReturnTask(horizon=5, clip=10.0), ".")
    'adaptd'
    """
    return f"{base}{sep}{task.name}" if task.qualified else base


def model_id(stream: str, task: PolicyTask) -> str:
    """The model id of a stream's policy for a task: the stream id, ``{stream}/{task}`` for a
    qualified task."""
    return qualified(stream, task, "/")
