"""The learning core of adaptd, usable without the daemon.

- The network and fast weights: ``PolicyNet``, ``init_params``, ``adapt`` (few-shot
  adaptation as a pure function of a dict of tensors), ``grad_and_loss``, ``mse``,
  ``cross_entropy``.
- Protocols: ``MetaLearner`` (with ``Task``, ``MetaStats``) and ``FewShotClassifier`` (with
  ``FittedSupport``, ``EpisodeStats``).
- Meta-learners (:mod:`adaptd.adapters.meta`): ``MAML``, ``FOMAML``, ``Reptile``, ``MetaSGD``
  (learned step sizes, optionally a per-step schedule) and ``ANIL``.
- Metric-based few-shot learners (:mod:`adaptd.adapters.fewshot`): ``ProtoNet`` (fitted
  ``Prototypes``), ``MatchingNet`` (``MatchingSupport``), ``RelationNet``, on an
  ``Embedding``.
- Continual learning (:mod:`adaptd.adapters.continual`, imported from there): strategies
  against forgetting (``EWC``, ``OnlineEWC``, ``SynapticIntelligence``,
  ``MemoryAwareSynapses``, ``LearningWithoutForgetting``, ``GEM``, ``AGEM``,
  ``ExperienceReplay``, ``CoresetReplay``, ``GenerativeReplay``, ``ProgressiveNets``,
  ``PackNet``, ``Growth``), ``run_sequence`` and ``AccuracyMatrix``.
- Tasks and training (:mod:`adaptd.adapters.tasks`): ``SinusoidTasks``, ``EpisodeSampler``
  and ``split_classes``, ``rotated_digits``, ``regime_dataset``, ``meta_train`` with
  ``EarlyStopping``, ``evaluate_adaptation``, ``evaluate_classifier``, ``tune``.
- Serving and storage: ``NumpyPolicy`` (torch-free serving) and the safetensors weights codec.

Names are resolved lazily (PEP 562 ``__getattr__``): importing ``adaptd.adapters`` imports
nothing heavy, and a torch-backed name imports torch on first use. This keeps the torch-free
modules (``serving``, ``codec``, ``protocol``) importable by clients and by the daemon's event
loop without pulling in torch, while ``from adaptd.adapters import Reptile`` still works.

>>> import adaptd.adapters as adapters
>>> adapters.NumpyPolicy.__module__
'adaptd.adapters.serving'
>>> adapters.PolicyNet(in_dim=4).hidden
(32, 32)
>>> adapters.ProtoNet.__module__, adapters.SinusoidTasks.__module__
('adaptd.adapters.fewshot.protonet', 'adaptd.adapters.tasks.sinusoid')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .codec import params_from_bytes, params_to_bytes, sha256_hex
    from .fast_weights import AdaptResult, Params, adapt, cross_entropy, grad_and_loss, mse
    from .fewshot import (
        Embedding,
        MatchingNet,
        MatchingSupport,
        ProtoNet,
        Prototypes,
        RelationNet,
    )
    from .meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
    from .network import PolicyNet, init_params
    from .protocol import (
        LOSSES,
        EpisodeStats,
        FewShotClassifier,
        FittedSupport,
        Loss,
        MetaLearner,
        MetaStats,
        Task,
    )
    from .serving import NumpyPolicy
    from .tasks import (
        EarlyStopping,
        EpisodeSampler,
        SinusoidTasks,
        evaluate_adaptation,
        evaluate_classifier,
        meta_train,
        regime_dataset,
        rotated_digits,
        split_classes,
        tune,
    )

__all__ = [
    "ANIL",
    "FOMAML",
    "LOSSES",
    "MAML",
    "AdaptResult",
    "EarlyStopping",
    "Embedding",
    "EpisodeSampler",
    "EpisodeStats",
    "FewShotClassifier",
    "FittedSupport",
    "Loss",
    "MatchingNet",
    "MatchingSupport",
    "MetaLearner",
    "MetaSGD",
    "MetaStats",
    "NumpyPolicy",
    "Params",
    "PolicyNet",
    "ProtoNet",
    "Prototypes",
    "RelationNet",
    "Reptile",
    "SinusoidTasks",
    "Task",
    "adapt",
    "cross_entropy",
    "evaluate_adaptation",
    "evaluate_classifier",
    "grad_and_loss",
    "init_params",
    "meta_train",
    "mse",
    "params_from_bytes",
    "params_to_bytes",
    "regime_dataset",
    "rotated_digits",
    "sha256_hex",
    "split_classes",
    "tune",
]

_EXPORTS: dict[str, tuple[str, ...]] = {
    "codec": ("params_from_bytes", "params_to_bytes", "sha256_hex"),
    "fast_weights": ("AdaptResult", "Params", "adapt", "cross_entropy", "grad_and_loss", "mse"),
    "fewshot": (
        "Embedding",
        "MatchingNet",
        "MatchingSupport",
        "ProtoNet",
        "Prototypes",
        "RelationNet",
    ),
    "meta": ("ANIL", "FOMAML", "MAML", "MetaSGD", "Reptile"),
    "network": ("PolicyNet", "init_params"),
    "protocol": (
        "LOSSES",
        "EpisodeStats",
        "FewShotClassifier",
        "FittedSupport",
        "Loss",
        "MetaLearner",
        "MetaStats",
        "Task",
    ),
    "serving": ("NumpyPolicy",),
    "tasks": (
        "EarlyStopping",
        "EpisodeSampler",
        "SinusoidTasks",
        "evaluate_adaptation",
        "evaluate_classifier",
        "meta_train",
        "regime_dataset",
        "rotated_digits",
        "split_classes",
        "tune",
    ),
}
"""Each exported name by the submodule it comes from (imported on first use)."""
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    source = _SOURCE.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
