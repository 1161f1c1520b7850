"""Metric-based few-shot learners (torch-backed), one algorithm per module.

Each turns a labelled support set into a classifier without gradient steps (``fit``) and
meta-learns its embedding from batches of N-way K-shot episodes (``meta_update``); see the
``FewShotClassifier`` protocol in :mod:`adaptd.adapters.protocol`.

>>> from adaptd.adapters.fewshot import MatchingNet, ProtoNet, RelationNet
>>> sorted(cls.algorithm for cls in (MatchingNet, ProtoNet, RelationNet))
['matching', 'protonet', 'relation']
"""

from .embedding import Embedding
from .matching import MatchingNet, MatchingSupport
from .protonet import ProtoNet, Prototypes
from .relation import RelationNet

__all__ = ["Embedding", "MatchingNet", "MatchingSupport", "ProtoNet", "Prototypes", "RelationNet"]
