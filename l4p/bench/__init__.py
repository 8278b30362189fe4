"""Benchmark protocols of the L4P paper and its peers, behind ``l4p bench``.

``PROTOCOLS`` (``l4p.bench.registry``) maps each name to its module; each module's docstring
documents the on-disk layout it reads. ``l4p.bench.runner`` holds the shared resumable loop and
``l4p.bench.io`` the result files. Importing this package imports no protocol.
"""

from l4p.bench.registry import PROTOCOLS, BenchProtocol, get_protocol

__all__ = ["PROTOCOLS", "BenchProtocol", "get_protocol"]
