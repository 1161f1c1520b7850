"""Tooling around the service, installed with the ``demo`` extra: ``adaptd demo`` and
``adaptd feed``, the embedded Tansu broker and Redis, the report and its plots.

Nothing in the service or the library imports this package; its commands reach the ``adaptd``
command line through the ``adaptd.commands`` entry points.
"""
