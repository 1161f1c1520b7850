"""Published reference numbers for the split and permuted benchmarks, with their sources and
how their settings differ from ours.

Every number here is quoted from a source that was read when this module was written (the
Avalanche reproducibility table, ContinualAI/continual-learning-baselines, README at commit
9d761b2, which also names the paper each target comes from); none is recomputed. They are
context, not targets: the published runs use MNIST (60,000 training images of 28x28
handwritten digits) with larger networks and more epochs, where we use scikit-learn's 8x8
digits (1438 training images) and Fashion-MNIST subsets, so only the ordering of strategies
and the size of the gap between scenarios are comparable.

Examples
--------
>>> sorted({r["scenario"] for r in SPLIT_MNIST})
['class', 'task']
>>> [r["strategy"] for r in SPLIT_MNIST if r["scenario"] == "class"][:2]
['lwf', 'generative']
"""

from __future__ import annotations

from typing import Any

__all__ = ["AVALANCHE", "PERMUTED_MNIST", "SETTING_DIFFERENCES", "SPLIT_MNIST"]

AVALANCHE = (
    "https://github.com/ContinualAI/continual-learning-baselines "
    "(README, commit 9d761b2be44f507b0d60f7764e148a047cd62f64)"
)
"""The Avalanche reproducibility table ("Continual Learning Baselines")."""

SPLIT_MNIST: list[dict[str, Any]] = [
    {
        "scenario": "class",
        "strategy": "lwf",
        "acc": 0.23,
        "avalanche": 0.23,
        "paper": "van de Ven & Tolias 2019, Three scenarios for continual learning "
        "(arXiv:1904.07734)",
        "setting": "Avalanche: MLP 1x256, SGD lr 0.001, 10 epochs, batch 128, alpha 1, T 1",
    },
    {
        "scenario": "class",
        "strategy": "generative",
        "acc": 0.75,
        "avalanche": 0.75,
        "paper": "Shin et al. 2017, Continual learning with deep generative replay "
        "(arXiv:1705.08690)",
        "setting": "Avalanche: MLP 2x400 relu, Adam lr 0.001, 10 epochs, batch 16, "
        "100 replayed samples",
    },
    {
        "scenario": "class",
        "strategy": "gdumb (not implemented here)",
        "acc": 0.97,
        "avalanche": 0.97,
        "paper": "Prabhu et al. 2020, GDumb (ECCV)",
        "setting": "Avalanche",
    },
    {
        "scenario": "task",
        "strategy": "si",
        "acc": 0.97,
        "avalanche": 0.97,
        "paper": "Zenke et al. 2017, Continual learning through synaptic intelligence (ICML)",
        "setting": "Avalanche: multi-head MLP 2x256, Adam lr 0.001, 10 epochs, batch 64, lambda 1",
    },
    {
        "scenario": "task",
        "strategy": "rwalk (not implemented here)",
        "acc": 0.99,
        "avalanche": 0.99,
        "paper": "Chaudhry et al. 2018, Riemannian walk (ECCV)",
        "setting": "Avalanche",
    },
]
"""Split MNIST, 5 tasks of 2 digits: final average accuracy (ACC) over all tasks."""

PERMUTED_MNIST: list[dict[str, Any]] = [
    {
        "strategy": "gem",
        "acc": 0.83,
        "avalanche": 0.80,
        "paper": "Lopez-Paz & Ranzato 2017, Gradient episodic memory (NeurIPS)",
        "setting": "20 tasks, 1000 examples a task, MLP 2x100, one pass, SGD lr 0.1, batch 10, "
        "memory strength 0.5",
    },
    {
        "strategy": "agem",
        "acc": 0.81,
        "avalanche": 0.81,
        "paper": "Chaudhry et al. 2019, Efficient lifelong learning with A-GEM (ICLR)",
        "setting": "online (one pass), as in the paper",
    },
    {
        "strategy": "ewc",
        "acc": 0.94,
        "avalanche": 0.83,
        "paper": "Kirkpatrick et al. 2017, Overcoming catastrophic forgetting (PNAS)",
        "setting": "Avalanche could not reproduce the paper's figure",
    },
    {
        "strategy": "si",
        "acc": 0.95,
        "avalanche": 0.83,
        "paper": "Zenke et al. 2017 (ICML)",
        "setting": "Avalanche could not reproduce the paper's figure",
    },
]
"""Permuted MNIST (10 to 20 tasks): final average accuracy; ``acc`` is the paper's figure."""

SETTING_DIFFERENCES = (
    "Published: MNIST (60,000 training images, 28x28), 10 or 20 tasks, networks of 100 to 400 "
    "units a layer, often 10 epochs a task; our split and permuted runs use scikit-learn's 8x8 "
    "digits (1438 training images, 64 pixels) and Fashion-MNIST subsets (harder than MNIST: "
    "clothing, not digits), one fixed PolicyNet (100, 100) for every strategy, hyperparameters "
    "chosen on our own validation splits, one seed. Our permuted sequence has 1000 tasks, not "
    "20. Compare orderings and gaps, not absolute numbers."
)
