"""adaptd's service: Kafka in, shift detection, few-shot adaptation, policies out.

Installed as ``adaptd.daemon``. The pure per-event core (schema, features, labels,
detection, stream and partition state) does no I/O; the service, Kafka, Redis and HTTP
live at the edges.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("adaptd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
