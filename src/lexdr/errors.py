"""Errors that a user can act on: each names the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

__all__ = ["LexdrError", "InputError", "ConfigError"]


class LexdrError(Exception):
    """Base class of every error lexdr raises on purpose."""


class InputError(LexdrError, ValueError):
    """A user-supplied file is malformed.

    The message always carries ``path:line`` (line is 1-based; 0 means the file as a whole), what is wrong,
    and how to fix it.
    """

    def __init__(self, path: str | Path, line: int, problem: str, fix: str | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{self.path}:{line}" if line else self.path
        msg = f"{where}: {problem}"
        if fix:
            msg += f" (fix: {fix})"
        super().__init__(msg)


class ConfigError(LexdrError, ValueError):
    """A configuration value is invalid or two values contradict each other."""
