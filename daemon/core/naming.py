"""Names a user recognises for a regime, from the statistics of its examples.

A regime id says which regimes recur; its name says what kind of market it is. The name is
read from the features of the examples a policy was adapted on (the new regime's first
labelled examples), in this order:

- **extreme event**: some example's return is at least ``extreme_z`` standard deviations
  (``ret_z``, in units of the volatility known before it);
- **high volatility**: the fast volatility is well above the slow one on average
  (``vol_ratio`` = ``0.5 log(fast / slow variance)`` at least ``high_vol``; 0.35 is a fast
  variance twice the slow one);
- **trending up** / **trending down**: the longest momentum feature (``mom_<h>_z``, the
  return over h events in standard deviations; else ``mean_slow_z``) averages at least
  ``trend_z`` in either direction;
- **sideways** otherwise.

Thresholds are plain defaults, not fitted; the features that decide are in the policy
message next to the name, so a client can apply its own.

>>> import numpy as np
>>> names = ("ret_z", "vol_ratio", "mom_20_z")
>>> regime_name(np.array([[0.5, 0.0, 1.5], [-0.2, 0.1, 1.2]]), names)
'trending up'
>>> regime_name(np.array([[7.0, 0.1, 0.0], [0.2, 0.1, 0.0]]), names)
'extreme event'
>>> regime_name(np.array([[0.1], [0.2]]), ("spread_z",)) is None  # nothing to tell by
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["DEFAULT_RULES", "REGIME_NAMES", "NamingRules", "regime_name"]

REGIME_NAMES = ("extreme event", "high volatility", "trending up", "trending down", "sideways")


class NamingRules(NamedTuple):
    """The thresholds of the names (see the module's description)."""

    extreme_z: float = 6.0
    high_vol: float = 0.35
    trend_z: float = 1.0


DEFAULT_RULES = NamingRules()


def _trend_column(names: Sequence[str]) -> str | None:
    momenta = [n for n in names if n.startswith("mom_") and n.endswith("_z")]
    if momenta:
        return max(momenta, key=lambda n: int(n[4:-2]))
    return "mean_slow_z" if "mean_slow_z" in names else None


def regime_name(
    x: np.ndarray, names: Sequence[str], rules: NamingRules = DEFAULT_RULES
) -> str | None:
    """The name of the regime of examples ``x`` (rows, columns named ``names``), or None
    when none of the features that decide is among them."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or x.shape[1] != len(names):
        raise ValueError(f"x must be (n, {len(names)}) with n > 0, got shape {x.shape}")
    col = {n: i for i, n in enumerate(names)}
    trend = _trend_column(names)
    if not {"ret_z", "vol_ratio"} & set(col) and trend is None:
        return None
    if "ret_z" in col and float(np.abs(x[:, col["ret_z"]]).max()) >= rules.extreme_z:
        return "extreme event"
    if "vol_ratio" in col and float(x[:, col["vol_ratio"]].mean()) >= rules.high_vol:
        return "high volatility"
    if trend is not None:
        mean = float(x[:, col[trend]].mean())
        if mean >= rules.trend_z:
            return "trending up"
        if mean <= -rules.trend_z:
            return "trending down"
    return "sideways"
