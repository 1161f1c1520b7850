"""Task distributions, data sets, convergence monitoring and tuning for the learners.

- ``SinusoidTasks``: the MAML paper's sinusoid regression tasks (fresh or from a fixed pool).
- ``EpisodeSampler`` and ``split_classes``: N-way K-shot episodes on held-out classes of any
  labelled array data set.
- ``rotated_digits``: scikit-learn's bundled digits with rotations as new classes (40).
- ``regime_dataset`` (and its pure parts in ``market``): regime segments of river's real price
  series as classes, windows of return features as examples.
- ``meta_train``, ``EarlyStopping``, ``evaluate_adaptation``, ``evaluate_classifier``:
  training with validation and early stopping; evaluations with 95 % confidence intervals.
- ``tune``: random search or successive halving of inner/meta step sizes and inner steps.

>>> from adaptd.adapters.tasks import EpisodeSampler, SinusoidTasks, tune
>>> SinusoidTasks.__module__
'adaptd.adapters.tasks.sinusoid'
"""

from .digits import rotated_digits
from .episodes import EpisodeSampler, split_classes
from .market import RegimeData, Segment, regime_dataset
from .monitor import (
    EarlyStopping,
    TrainingHistory,
    evaluate_adaptation,
    evaluate_classifier,
    meta_train,
    query_loss,
)
from .sinusoid import SinusoidTasks
from .stats import Estimate, mean_ci95
from .tuning import Config, SearchSpace, Trial, TuningResult, tune

__all__ = [
    "Config",
    "EarlyStopping",
    "EpisodeSampler",
    "Estimate",
    "RegimeData",
    "SearchSpace",
    "Segment",
    "SinusoidTasks",
    "TrainingHistory",
    "Trial",
    "TuningResult",
    "evaluate_adaptation",
    "evaluate_classifier",
    "mean_ci95",
    "meta_train",
    "query_loss",
    "regime_dataset",
    "rotated_digits",
    "split_classes",
    "tune",
]
