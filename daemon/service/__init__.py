"""The daemon's wiring: the consume loop, ownership and commits, publishing, meta-training
rounds and retention, each built from injected collaborators."""

from .daemon import Daemon

__all__ = ["Daemon"]
