"""Kept only for ``stage_memory.py`` until it imports :mod:`_common`, the benchmarks' one helper module."""

from _common import cpu_name

__all__ = ["cpu_name"]
