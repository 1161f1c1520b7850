"""Continual learning: strategies that keep what a model learned on earlier tasks while it
learns new ones, the training loop they plug into, and the field's metrics.

- The contract (:mod:`.protocol`): ``ContinualTask``, ``ContinualModel`` and the ``Strategy``
  base class whose hooks a training loop calls before, during and after each task;
  :func:`train_task` and :func:`run_sequence` (:mod:`.training`) are that loop, and
  ``AccuracyMatrix`` (:mod:`.metrics`) computes ACC, BWT, FWT, forgetting and retention.
- Importance-based penalties: ``EWC`` (per-task), ``OnlineEWC`` (a running Fisher),
  ``SynapticIntelligence``, ``MemoryAwareSynapses``; distillation:
  ``LearningWithoutForgetting``. The anchored ones also protect a meta-learned
  initialisation (``AnchoredRegularizer``, a meta-learner's ``regularizer``) and a warm-started
  adaptation (``ProximalStep``, an inner-loop step).
- Memory: ``ExperienceReplay`` over an ``EpisodicMemory`` with injected insertion
  (``ReservoirInserter``, ``QuotaInserter``) and sampling (``UniformSampler``,
  ``PrioritizedSampler``, ``StratifiedSampler``), ``CoresetReplay`` (``herding`` or
  ``k_center`` selection), ``GEM`` and ``AGEM`` (gradient projection), ``GenerativeReplay``
  (a ``VAE`` of the input domain); what they share (the classes of each task, their state,
  ``replay_losses``) is :mod:`.rehearsal`.
- Architecture: ``ProgressiveNets`` (columns of a ``ProgressiveNet``), ``PackNet`` (pruning
  masks per task), ``Growth`` (PackNet that widens hidden layers when a task's loss
  plateaus high).

``strategies()`` finds every strategy by name (plain fine-tuning is "naive").

>>> from adaptd.adapters.continual import ContinualModel, Strategy, run_sequence
>>> Strategy.name
'naive'
>>> sorted(strategies())[:4]
['agem', 'coreset', 'ewc', 'gem']
"""

from .agem import AGEM, agem_projection
from .anchored_regularizer import AnchoredRegularizer
from .columns import ProgressiveNet
from .coreset import CoresetReplay, herding, k_center
from .ewc import EWC
from .gem import GEM, gem_projection
from .generative import GenerativeReplay
from .growth import Growth, widen
from .importance import fisher_diagonal, quadratic_penalty
from .lwf import LearningWithoutForgetting
from .mas import MemoryAwareSynapses, output_sensitivity
from .memory import (
    EpisodicMemory,
    Inserter,
    MemoryBatch,
    PrioritizedSampler,
    QuotaInserter,
    ReservoirInserter,
    Sampler,
    StratifiedSampler,
    UniformSampler,
    fair_shares,
)
from .metrics import AccuracyMatrix
from .online_ewc import OnlineEWC
from .packnet import PackNet
from .progressive import ProgressiveNets
from .protocol import ContinualModel, ContinualTask, Strategy, restrict, tensor_bytes
from .proximal import ProximalStep
from .registry import strategies
from .rehearsal import replay_losses
from .replay import ExperienceReplay
from .si import SynapticIntelligence
from .training import SequenceResult, TaskStats, TrainConfig, run_sequence, score, train_task
from .vae import VAE

__all__ = [
    "AGEM",
    "EWC",
    "GEM",
    "VAE",
    "AccuracyMatrix",
    "AnchoredRegularizer",
    "ContinualModel",
    "ContinualTask",
    "CoresetReplay",
    "EpisodicMemory",
    "ExperienceReplay",
    "GenerativeReplay",
    "Growth",
    "Inserter",
    "LearningWithoutForgetting",
    "MemoryAwareSynapses",
    "MemoryBatch",
    "OnlineEWC",
    "PackNet",
    "PrioritizedSampler",
    "ProgressiveNet",
    "ProgressiveNets",
    "ProximalStep",
    "QuotaInserter",
    "ReservoirInserter",
    "Sampler",
    "SequenceResult",
    "Strategy",
    "StratifiedSampler",
    "SynapticIntelligence",
    "TaskStats",
    "TrainConfig",
    "UniformSampler",
    "agem_projection",
    "fair_shares",
    "fisher_diagonal",
    "gem_projection",
    "herding",
    "k_center",
    "output_sensitivity",
    "quadratic_penalty",
    "replay_losses",
    "restrict",
    "run_sequence",
    "score",
    "strategies",
    "tensor_bytes",
    "train_task",
    "widen",
]
