"""Argument checks shared by the continual-learning strategies' constructors.

Each check takes the argument's name (used in the message) and its value, and returns the
validated value (numbers as ``float``, integers unchanged) or raises a
``ValueError`` naming the argument, with the wording the strategies have always used. ``bool``
is refused wherever a number is expected, although it is an ``int`` subclass, so that a flag
passed by mistake is caught.

Examples
--------
>>> non_negative("lam", 3)
3.0
>>> positive_int("max_examples", 512)
512
>>> optional_positive_int("max_tasks", None) is None
True
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

from collections.abc import Container
from typing import Any, TypeVar

__all__ = [
    "in_unit_interval",
    "integer",
    "non_negative",
    "one_of",
    "optional_positive_int",
    "positive",
    "positive_int",
]

T = TypeVar("T")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def non_negative(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a number ``>= 0`` (NaN is refused).

    Examples
    --------
    >>> non_negative("alpha", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a non-negative number, got nan
    """
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def positive(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a number ``> 0``.

    Examples
    --------
    >>> positive("temperature", 2)
    2.0
    """
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def in_unit_interval(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a number in ``[0, 1]``.

    Examples
    --------
    >>> in_unit_interval("decay", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: decay must be a number in [0, 1], got 1.5
    """
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def integer(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer (not a bool).

    Examples
    --------
    >>> integer("seed", -3)
    -3
    """
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer ``>= 1`` (not a bool).

    Examples
    --------
    >>> positive_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive integer, got 0
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def optional_positive_int(name: str, value: Any) -> int | None:
    """Return ``value`` if it is ``None`` or an integer ``>= 1`` (not a bool).

    Examples
    --------
    >>> optional_positive_int("max_hidden", 2.0)
    Traceback (most recent call last):
    ...
    ValueError: max_hidden must be a positive integer or None, got 2.0
    """
    if value is not None and (not _is_int(value) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return value


def one_of(name: str, value: T, choices: Container[Any]) -> T:
    """Return ``value`` if it is in ``choices``.

    Examples
    --------
    >>> one_of("space", "pixels", ("features", "input"))
    Traceback (most recent call last):
    ...
    ValueError: space must be one of ('features', 'input'), got 'pixels'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
