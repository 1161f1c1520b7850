"""Argument checks for the whole library: one place for "a positive integer", "a positive
finite number", "a number in [0, 1]" and their messages.

Each check takes the argument's name (used in the message) and its value, and returns the
validated value (numbers as ``float``, integers as ``int``) or raises a ``ValueError`` naming
the argument and the bad value. ``bool`` is refused wherever a number is expected, although it
is an ``int`` subclass, so that a flag passed by mistake is caught; NumPy integers count as
integers. Constructors call them eagerly, so a bad setting fails where it is given.

Examples
--------
>>> non_negative("lam", 3)
3.0
>>> positive_int("max_examples", 512)
512
>>> positive_int("max_tasks", None, optional=True) is None
True
>>> positive_finite("inner_lr", 0.05)
0.05
>>> in_unit_interval("decay", 0.9)
0.9
>>> one_of("store", "stream", ("after_task", "stream"))
'stream'
>>> positive_int("capacity", True)
Traceback (most recent call last):
...
ValueError: capacity must be a positive integer, got True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Container, Iterable
from typing import Any, Literal, TypeVar, overload

__all__ = [
    "flag",
    "in_interval",
    "in_unit_interval",
    "int_at_least",
    "int_in_range",
    "integer",
    "is_int",
    "is_number",
    "non_negative",
    "non_negative_int",
    "one_of",
    "positive",
    "positive_finite",
    "positive_int",
    "tail_levels",
]

T = TypeVar("T")


def is_number(value: Any) -> bool:
    """True for a real number (int, float, NumPy scalar) that is not a bool.

    >>> is_number(2.5), is_number(True), is_number("1")
    (True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    """True for an integer (Python or NumPy) that is not a bool.

    >>> is_int(3), is_int(3.0), is_int(False)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def non_negative(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a number ``>= 0`` (NaN is refused).

    >>> non_negative("alpha", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a non-negative number, got nan
    """
    if not is_number(value) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def positive(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a number ``> 0`` (infinity allowed).

    >>> positive("temperature", 2)
    2.0
    """
    if not is_number(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def positive_finite(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a finite number ``> 0`` (a step size, a scale).

    >>> positive_finite("meta_lr", float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: meta_lr must be a positive finite number, got inf
    """
    if not is_number(value) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def in_interval(
    name: str, value: Any, low: float, high: float, *, closed: tuple[bool, bool] = (True, True)
) -> float:
    """Return ``float(value)`` if it is a number between ``low`` and ``high``, each end
    included when ``closed`` says so.

    >>> in_interval("prune", 1.0, 0, 1, closed=(False, False))
    Traceback (most recent call last):
    ...
    ValueError: prune must be a number in (0, 1), got 1.0
    """
    above = is_number(value) and (value >= low if closed[0] else value > low)
    if not (above and (value <= high if closed[1] else value < high)):
        interval = f"{'[' if closed[0] else '('}{low:g}, {high:g}{']' if closed[1] else ')'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def tail_levels(name: str, values: Iterable[Any]) -> tuple[float, ...]:
    """Return ``values`` as a non-empty tuple of tail probabilities, each in ``(0, 0.5)`` (the
    levels of a VaR).

    >>> tail_levels("levels", [0.01, 0.5])
    Traceback (most recent call last):
    ...
    ValueError: levels must be tail probabilities in (0, 0.5), got (0.01, 0.5)
    """
    levels = tuple(float(v) for v in values)
    if not levels or not all(0.0 < v < 0.5 for v in levels):
        raise ValueError(f"{name} must be tail probabilities in (0, 0.5), got {levels}")
    return levels


def in_unit_interval(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a number in ``[0, 1]`` (a probability, a decay).

    >>> in_unit_interval("decay", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: decay must be a number in [0, 1], got 1.5
    """
    return in_interval(name, value, 0, 1)


def integer(name: str, value: Any) -> int:
    """Return ``int(value)`` if it is an integer (not a bool).

    >>> integer("seed", -3)
    -3
    """
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


@overload
def positive_int(name: str, value: Any, *, optional: Literal[False] = False) -> int: ...
@overload
def positive_int(name: str, value: Any, *, optional: bool) -> int | None: ...
def positive_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    """Return ``int(value)`` if it is an integer ``>= 1`` (not a bool); with ``optional``,
    ``None`` passes too.

    >>> positive_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive integer, got 0
    >>> positive_int("max_hidden", 2.0, optional=True)
    Traceback (most recent call last):
    ...
    ValueError: max_hidden must be a positive integer or None, got 2.0
    """
    if optional and value is None:
        return None
    return _int_at_least(name, value, 1, f"a positive integer{_or_none(optional)}")


@overload
def non_negative_int(name: str, value: Any, *, optional: Literal[False] = False) -> int: ...
@overload
def non_negative_int(name: str, value: Any, *, optional: bool) -> int | None: ...
def non_negative_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    """Return ``int(value)`` if it is an integer ``>= 0`` (not a bool); with ``optional``,
    ``None`` passes too.

    >>> non_negative_int("steps", -1)
    Traceback (most recent call last):
    ...
    ValueError: steps must be a non-negative integer, got -1
    """
    if optional and value is None:
        return None
    return _int_at_least(name, value, 0, f"a non-negative integer{_or_none(optional)}")


def int_at_least(name: str, value: Any, low: int) -> int:
    """Return ``int(value)`` if it is an integer ``>= low`` (not a bool).

    >>> int_at_least("eta", 1, 2)
    Traceback (most recent call last):
    ...
    ValueError: eta must be an integer >= 2, got 1
    """
    return _int_at_least(name, value, low, f"an integer >= {low}")


def int_in_range(name: str, value: Any, low: int, high: int) -> int:
    """Return ``int(value)`` if it is an integer in ``[low, high]`` (not a bool).

    >>> int_in_range("k", 5, 0, 4)
    Traceback (most recent call last):
    ...
    ValueError: k must be an integer in [0, 4], got 5
    """
    if not is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (not 0, 1 or a string).

    >>> flag("per_step", 1)
    Traceback (most recent call last):
    ...
    ValueError: per_step must be True or False, got 1
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def one_of(name: str, value: T, choices: Container[Any]) -> T:
    """Return ``value`` if it is in ``choices``.

    >>> one_of("space", "pixels", ("features", "input"))
    Traceback (most recent call last):
    ...
    ValueError: space must be one of ('features', 'input'), got 'pixels'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _int_at_least(name: str, value: Any, low: int, what: str) -> int:
    """``int(value)`` if it is an integer ``>= low`` (not a bool); else a ValueError saying
    that ``name`` must be ``what``."""
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def _or_none(optional: bool) -> str:
    return " or None" if optional else ""
