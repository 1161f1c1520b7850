"""Meta-learners of the policy initialisation (torch-backed), one algorithm per module.

>>> from adaptd.adapters.meta import FOMAML, Reptile
>>> sorted(cls.algorithm for cls in (FOMAML, Reptile))
['fomaml', 'reptile']
"""

from .fomaml import FOMAML
from .reptile import Reptile

__all__ = ["FOMAML", "Reptile"]
