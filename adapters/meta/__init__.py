"""Meta-learners of the policy initialisation (torch-backed), one algorithm per module;
``learners()`` finds them all by name. ``FunctionRegularizer`` makes a penalty function the
``regularizer`` a learner is constructed with.

>>> from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
>>> [(cls.algorithm, cls.second_order) for cls in (MAML, FOMAML, Reptile, MetaSGD, ANIL)]
[('maml', True), ('fomaml', False), ('reptile', False), ('metasgd', True), ('anil', True)]
"""

from .anil import ANIL
from .fomaml import FOMAML
from .maml import MAML
from .metasgd import MetaSGD
from .registry import learners
from .regularizer import FunctionRegularizer
from .reptile import Reptile

__all__ = ["ANIL", "FOMAML", "MAML", "FunctionRegularizer", "MetaSGD", "Reptile", "learners"]
