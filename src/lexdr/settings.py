"""Declaring settings once: a field's default and help live on the config dataclass, and everything else —
the TOML loader, the CLI options, the docs — reads them from there.

``setting(default, help)`` declares a field; :func:`help_of` / :func:`default_of` read it back (the CLI's
options use them); :func:`build` makes a config from a TOML table with strict type checks, so ``seed =
"thirteen"`` or ``batch_size = 8.7`` is reported with its section and key before any work starts, instead of
failing (or silently truncating) an hour in.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any, Mapping, Sequence

from lexdr.errors import ConfigError, LexdrError

__all__ = ["setting", "help_of", "default_of", "fingerprint_fields", "build", "to_plain", "require", "as_enums",
           "at_least", "at_most", "valid_seed", "SEED_MAX"]


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = dataclasses.MISSING,
            fingerprint: bool = True) -> Any:
    """A dataclass field with its help text. ``fingerprint=False`` marks an execution option (batch size,
    device, progress bars) that cannot change results: it is left out of the stage fingerprints."""
    meta = {"help": help, "fingerprint": fingerprint}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise AttributeError(f"{cls.__name__} has no setting {name!r}")


def help_of(cls: type, name: str) -> str:
    return _field(cls, name).metadata.get("help", "")


def default_of(cls: type, name: str) -> Any:
    f = _field(cls, name)
    if f.default is not dataclasses.MISSING:
        return getattr(f.default, "value", f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise AttributeError(f"{cls.__name__}.{name} has no default")


def fingerprint_fields(cls: type) -> list[str]:
    """The fields of ``cls`` that can change results (all but those declared with ``fingerprint=False``)."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("fingerprint", True)]


def to_plain(x: Any) -> Any:
    """A config as JSON-ready data: dataclasses to dicts, enums to their values, tuples to lists."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, enum.Enum):
        return x.value
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    if isinstance(x, Mapping):
        return {str(k): to_plain(v) for k, v in x.items()}
    if hasattr(x, "__fspath__"):
        return str(x)
    return x


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> Mapping[str, Any]:
    """A config class's resolved field annotations (resolved once: configs are rebuilt by dataclasses.replace)."""
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _check(value: Any, tp: Any) -> str | None:
    """None when ``value`` fits annotation ``tp``, else what was expected."""
    if tp is Any:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        problems = [_check(value, a) for a in args]
        if any(p is None for p in problems):
            return None
        return " or ".join("none (leave it out)" if a is type(None) else p for a, p in zip(args, problems))
    if tp is type(None):
        return None if value is None else "none"
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return "a list"
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        for v in value:
            if args and _check(v, args[0]) is not None:
                return f"a list of {_type_name(args[0])}"
        return None
    if origin in (dict, Mapping) or tp in (dict,):
        return None if isinstance(value, Mapping) else "a table"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return None if value in values or isinstance(value, tp) else f"one of {values}"
    if tp is bool:
        return None if isinstance(value, bool) else "true or false"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if tp is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if tp is str:
        return None if isinstance(value, str) else "a string"
    if dataclasses.is_dataclass(tp):
        return None if isinstance(value, (Mapping, tp)) else "a table"
    return None


def build(cls: type, table: Mapping[str, Any], where: str, errors: list[str], **fixed: Any) -> Any:
    """``cls(**table, **fixed)`` with every problem appended to ``errors`` as ``[where] key: ...``; None when
    the table cannot make a config. Unknown keys, wrong types and the class's own checks are all reported."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    ok = True
    for k in sorted(set(table) - names):
        errors.append(f"[{where}] unknown key {k!r}; known: {', '.join(sorted(names - set(fixed)))}")
        ok = False
    kwargs: dict[str, Any] = {}
    for k, v in table.items():
        if k not in names:
            continue
        expected = _check(v, hints.get(k, Any))
        if expected is not None:
            errors.append(f"[{where}] {k} must be {expected}, got {v!r}")
            ok = False
            continue
        kwargs[k] = v
    if not ok:
        return None
    try:
        return cls(**{**kwargs, **fixed})
    except (TypeError, ValueError, LexdrError) as e:
        msg = str(e).removeprefix("error: ")
        errors.append(f"[{where}] {msg}")
        return None


def require(cond: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``cond``: the one-line check every config uses."""
    if not cond:
        raise ConfigError(message)


def as_enums(obj: Any, names: Sequence[str]) -> None:
    """Convert each field of ``obj`` in ``names`` to its annotated :class:`enum.Enum` (a frozen dataclass's
    ``__post_init__``), or raise :class:`ConfigError` naming the field, the allowed values and the value given: a
    bad ``--method`` or ``[fusion] adaptive`` is a one-line error, not an enum traceback."""
    hints = _hints(type(obj))
    for name in names:
        tp, value = hints[name], getattr(obj, name)
        if isinstance(value, tp):
            continue
        try:
            object.__setattr__(obj, name, tp(value))
        except ValueError:
            raise ConfigError(f"{name} must be one of {', '.join(str(m.value) for m in tp)}; got {value!r}") from None


# Seeds go to numpy, torch and FAISS, which take unsigned 32-bit values.
SEED_MAX = 2**32 - 1


def valid_seed(obj: Any, names: Sequence[str] = ("seed",), *, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for a seed field outside 0 .. :data:`SEED_MAX` (what numpy, torch and FAISS
    all accept), naming the field and the range, before anything is seeded with it."""
    for name in names:
        value = getattr(obj, name)
        if not 0 <= value <= SEED_MAX:
            raise ConfigError(f"{prefix}{name} must be between 0 and {SEED_MAX} (fix: e.g. {name} = 13), "
                              f"got {value}")


def at_least(obj: Any, names: Sequence[str], bound: float, *, prefix: str = "", optional: bool = False,
             note: str = "", strict: bool = False) -> None:
    """Raise :class:`ConfigError` for the first field of ``obj`` in ``names`` below ``bound`` (``strict``: at or
    below it; ``optional``: a field left at None is allowed). The one range check the config classes share; the
    message names the field (``prefix`` + name), the bound and the value."""
    for name in names:
        value = getattr(obj, name)
        if value is None and optional:
            continue
        if value < bound or (strict and value == bound):
            extra = " (or unset)" if optional else ""
            raise ConfigError(f"{prefix}{name} must be {'>' if strict else '>='} {bound:g}{extra}{note}, got {value}")


def at_most(obj: Any, names: Sequence[str], bound: float, *, prefix: str = "", strict: bool = False) -> None:
    """:func:`at_least`'s upper half: raise :class:`ConfigError` for the first field of ``obj`` in ``names``
    above ``bound`` (``strict``: at or above it). A share in [0, 1) is ``at_least(..., 0)`` plus
    ``at_most(..., 1, strict=True)``."""
    for name in names:
        value = getattr(obj, name)
        if value > bound or (strict and value == bound):
            raise ConfigError(f"{prefix}{name} must be {'<' if strict else '<='} {bound:g}, got {value}")
