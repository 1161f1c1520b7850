"""The learning core of adaptd, usable without the daemon.

- The network and fast weights: ``PolicyNet``, ``init_params``, ``adapt`` (few-shot
  adaptation as a pure function of a dict of tensors), ``grad_and_loss``, ``mse``,
  ``cross_entropy``.
- Protocols: ``MetaLearner`` (with ``Task``, ``MetaStats``, its ``Regularizer`` and the
  inner loop's ``InnerStep``) and ``FewShotClassifier`` (with ``FittedSupport``,
  ``EpisodeStats``).
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

Names are resolved lazily: importing ``adaptd.adapters`` imports nothing heavy, and a
torch-backed name imports torch on first use. This keeps the torch-free modules (``serving``,
``codec``, ``protocol``) importable by clients and by the daemon's event loop without pulling
in torch, while ``from adaptd.adapters import Reptile`` still works. The public names are
listed once, in ``__init__.pyi``: type checkers read it as the package's interface, and
``lazy_loader.attach_stub`` reads it at run time to build ``__all__`` and the PEP 562
``__getattr__`` that imports each name from its module on first use.

>>> import adaptd.adapters as adapters
>>> adapters.NumpyPolicy.__module__
'adaptd.adapters.serving'
>>> adapters.PolicyNet(in_dim=4).hidden
(32, 32)
>>> adapters.ProtoNet.__module__, adapters.SinusoidTasks.__module__
('adaptd.adapters.fewshot.protonet', 'adaptd.adapters.tasks.sinusoid')
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
