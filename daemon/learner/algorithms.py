"""The meta-learner the ``adaptation`` settings name, built for a task's network."""

from __future__ import annotations

from adaptd.adapters import PolicyNet
from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
from adaptd.adapters.protocol import Loss, MetaLearner, Regularizer

from ..config.settings import AdaptationSettings

__all__ = ["LEARNERS", "make_learner"]

LEARNERS: dict[str, type[MetaLearner]] = {
    cls.algorithm: cls for cls in (MAML, FOMAML, Reptile, MetaSGD, ANIL)
}
"""``adaptation.meta_algorithm`` values and their classes."""


def make_learner(
    settings: AdaptationSettings,
    net: PolicyNet,
    loss: Loss = "mse",
    regularizer: Regularizer | None = None,
) -> MetaLearner:
    """The meta-learner named by ``adaptation.meta_algorithm``, with the daemon's settings and
    ``regularizer`` (the protection's penalty on the initialisation, if any)."""
    cls = LEARNERS[settings.meta_algorithm]
    # The settings have one step size for each kind of outer step.
    meta_lr = settings.meta_lr if cls.outer_step == "interpolation" else settings.adam_lr
    # Reptile moves the initialisation toward adapted weights: toward those the learner
    # would serve, its best iterate (policy_learner), not an overshoot past them.
    extra = {"keep_best": True} if cls is Reptile else {}
    return cls(
        net,
        inner_steps=settings.inner_steps,
        inner_lr=settings.inner_lr,
        meta_lr=meta_lr,
        backend=settings.backend,
        seed=settings.seed,
        loss=loss,
        regularizer=regularizer,
        **extra,
    )
