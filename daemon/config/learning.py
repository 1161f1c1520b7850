"""The learning sections of the Settings object: adaptation and meta-training, the replay
reservoir, and forgetting prevention (the others are in :mod:`.sections`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ..core.tasks.registry import resolve
from ..core.validation import DEFAULT_VALIDATION
from .sections import Section


class AdaptationSettings(Section):
    """Few-shot adaptation, its publication gate, and meta-training of the initialisation."""

    shots: int = Field(20, ge=2, le=1024)
    """Labelled examples of the new regime collected after a shift (support plus query)."""
    query_size: int = Field(8, ge=1)
    """The latest of those examples, held out to gate publication."""
    inner_steps: int = Field(5, ge=1, le=1000)
    """Gradient steps of the fast-weight inner loop."""
    inner_lr: float = Field(0.05, gt=0)
    """Step size of the inner loop."""
    deadline_s: float = Field(1.0, gt=0, le=10.0)
    """Wall-clock budget of one adaptation; the design's hard bound is 10 s."""
    backend: Literal["autograd", "func"] = "autograd"
    """Gradient engine of the inner loop: torch.autograd.grad or torch.func.grad."""
    hidden: tuple[int, ...] = (32, 32)
    """Hidden layer widths of the policy MLP."""
    min_improvement: float = Field(0.0, ge=0)
    """Publish only if query loss improves on the current policy by more than this."""
    gate_z: float = Field(2.0, ge=0)
    """...and by more than this many standard errors of the paired per-example loss
    difference on the query set (0: any improvement passes). 2 was chosen on the market
    series' development split (docs/benchmarks.md, "Markets"): at 1, chance winners on eight
    query examples were published and served until validation retired them."""
    trust_region: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Most an adaptation may move a policy away from its parent (the policy subscribers
    hold), relative to the parent's size: `||theta - theta_parent|| <= trust_region *
    ||theta_parent||`, each norm over all the network's weights as one vector (0.05: 5 % of
    the parent's norm). Enforced by projecting the start and every inner step onto that ball.
    Not applied when the parent does not beat its task's constant baseline on the query
    examples: a subscriber is not held near a policy that is losing. None: unbounded."""
    meta_algorithm: Literal["maml", "fomaml", "reptile", "metasgd", "anil"] = "anil"
    """How the shared initialisation is meta-trained from replayed episodes and adapted: MAML
    (second order), first-order MAML, Reptile, Meta-SGD (learned per-parameter step sizes)
    or ANIL (only the output layer adapts). ANIL is the default: lowest validation error of
    the five on the daemon's own task on real prices, and the fastest adaptation (see the
    `policy` section of docs/benchmarks.md)."""
    meta_interval_s: float = Field(2.0, gt=0)
    """Seconds between meta-training rounds."""
    meta_batch: int = Field(8, ge=1)
    """Episodes per meta-update."""
    meta_steps: int = Field(4, ge=1)
    """Meta-updates per round."""
    meta_lr: float = Field(0.1, gt=0, le=1)
    """Reptile's outer step: the fraction of the way the initialisation moves toward the
    mean adapted weights."""
    adam_lr: float = Field(0.01, gt=0)
    """Adam step size of the outer loop of maml, fomaml, metasgd and anil."""
    meta_min_items: int = Field(8, ge=1)
    """Replay items needed before meta-training starts."""
    torch_threads: int = Field(1, ge=1, le=64)
    """Intra-op threads of torch (the event loop keeps the other core)."""
    isolation: Literal["process", "thread"] = "process"
    """Where torch runs: a child process (no GIL shared with the event loop), or a thread
    of the daemon (one process, slower adaptations under load)."""
    seed: int = 0
    """Seed of parameter initialisation and meta-training sampling."""
    tasks: tuple[str, ...] = ("return",)
    """What the policies learn: policy tasks by name, or `module:Class` for a task class
    outside adaptd (see "Policy tasks" in docs/architecture.md). Every stream runs each task
    with its own labels, replay, regimes and published policy; the first task's errors feed
    the detectors' error channel."""
    validate_policies: bool = DEFAULT_VALIDATION.enabled
    """Continuous validation: every live policy is scored against its task's baseline on the
    same examples, and one that is shown to lose (see `validate_z`) is retired and replaced
    by the baseline, published with the reason (the message's `validation`)."""
    validate_z: float = Field(DEFAULT_VALIDATION.z, gt=0)
    """Standard errors by which a policy's mean loss must exceed its baseline's to retire it,
    or by which the share of examples it loses on must exceed a coin's while its mean loss is
    above the baseline's (tested after every batch: a lower value retires a policy that is
    as good as its baseline sooner or later, which costs little, since the baseline then
    serves; a higher one leaves a losing policy live for longer). 1 was chosen on the market
    series' development split with the gate opened, so that many policies went live: the
    served forecasts lost least to the baselines at 1 or below, most at 3 (docs/benchmarks.md,
    "Markets")."""
    validate_min_examples: int = Field(DEFAULT_VALIDATION.min_examples, ge=2)
    """Examples a policy is scored on before it can be retired."""
    task_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Options of the configured tasks by task name, passed to the task's class (for example
    `{"risk": {"levels": [0.01, 0.05]}}`: the tail probabilities of the VaR and expected
    shortfall the risk task's messages define; `{"strategy": {"ensemble": "equal"}}`: the
    strategy policy as weights of its own, not the default learned correction to Hedge's
    weights, see docs/operations.md). A
    task's own `horizon` or `clip` here replaces `features.label_horizon` or
    `features.label_clip` for it (for example a strategy task labelled over 20 events beside
    a risk task over 1)."""

    @model_validator(mode="after")
    def _check(self) -> AdaptationSettings:
        if self.query_size >= self.shots:
            raise ValueError("query_size must be smaller than shots")
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("tasks must be a non-empty list of distinct task names")
        for name in self.tasks:
            resolve(name)
        if unknown := sorted(set(self.task_options) - set(self.tasks)):
            raise ValueError(f"task_options names tasks that are not configured: {unknown}")
        for name, options in self.task_options.items():
            try:  # the stream's horizon and clip are other sections': any valid ones check
                resolve(name)(**{"horizon": 1, "clip": 10.0, **options})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"task_options of {name!r}: {exc}") from None
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError("hidden must be a non-empty list of positive widths")
        return self


class ReplaySettings(Section):
    """The Redis reservoir of completed episodes."""

    capacity: int = Field(10_000, ge=1)
    """Most episodes kept; beyond it, Algorithm R keeps a uniform sample of all seen."""
    episode_size: int = Field(32, ge=2, le=4096)
    """Labelled examples per episode; an episode also ends at a shift."""
    sample_strategy: Literal["uniform", "stratified", "regime"] = "regime"
    """How meta-training samples episodes: uniformly, evenly across streams, or evenly across
    the (stream, regime) pairs held, so that a short or long-past regime is rehearsed as
    often as a long or recent one (the replay half of forgetting prevention)."""


class ContinualSettings(Section):
    """Forgetting prevention: the penalty that protects the meta-learned initialisation and
    returning regimes' policies, and the held-out episodes that measure retention (see
    "Forgetting prevention in the daemon" in docs/architecture.md)."""

    penalty: Literal["none", "online_ewc"] = "online_ewc"
    """Penalty on moving weights that mattered before: online EWC (a running diagonal Fisher
    and an anchor, both checkpointed with the meta-learner), or none (replay alone)."""
    ewc_lambda: float = Field(100.0, ge=0, le=1e6)
    """Strength of the online-EWC penalty on the meta-learned initialisation,
    lambda / 2 * sum F (w - anchor)^2, added to every meta-update."""
    policy_lambda: float = Field(1.0, ge=0, le=1e6)
    """Strength of the same penalty (same Fisher) when a returning regime is adapted from its
    last policy, anchored at that policy. Lower than ewc_lambda: the support loss here is a
    mean over a dozen examples, and 1 weighs what the policy learned like the new examples
    (at 100 a returning policy barely moves; measured in docs/architecture.md)."""
    ewc_decay: float = Field(0.9, ge=0, le=1)
    """Factor applied to the running Fisher before each meta round's is added (1: never
    forget an importance, 0: only the last round's)."""
    fisher_episodes: int = Field(16, ge=1, le=1024)
    """Episodes sampled (stratified by regime) after each meta round to estimate that round's
    Fisher information at the new initialisation."""
    holdout_per_regime: int = Field(2, ge=0, le=64)
    """The first episodes of every (stream, regime) kept out of the reservoir, never trained
    on, to measure retention (0: no held-out episodes and no retention metrics)."""
    holdout_max_regimes: int = Field(64, ge=1, le=100_000)
    """Most (stream, regime) pairs with held-out episodes; beyond it the pair offered an
    episode least recently is forgotten with its reference losses (LRU)."""
    holdout_min_examples: int = Field(16, ge=2)
    """Shorter episodes (cut early by a shift) are never held out: their query part would be
    an example or two. Capped at replay.episode_size, so full episodes always qualify."""
    retention_floor: float = Field(0.8, gt=0, le=1)
    """A regime whose retention (reference loss / current loss of its held-out episodes)
    falls below this is logged as a warning, once per fall; the fall ends when it is back
    above halfway between the floor and 1."""
