"""Command-line flags and flow parameters derived from a job's fields: one name, one default, one rule.

A job is a frozen dataclass validated once in ``__post_init__`` (:class:`~unsamv2.jobs.mine.MineJob`,
:class:`~unsamv2.train.config.TrainConfig`, :class:`~unsamv2.eval.checkpoint.EvalJob`). A
:class:`Flag` says only what the field itself cannot: its help text, and older flag names still
accepted. Everything else comes from the field:

- the name: ``--shard-size`` for ``shard_size``; a bool field that defaults to True is turned off
  with ``--no-<name>``, one that defaults to False turned on with ``--<name>``; a tuple field is a
  repeatable flag named by :attr:`Flag.repeat` (``--policy`` once per value of ``policies``);
- the type and the choices: ``int``, ``float``, ``str``, ``X | None`` as ``X``, and a ``Literal``'s
  values as the choices;
- the default: the field's (or a use case's own, e.g. ``PRETRAIN_DEFAULTS``), shown in the help.

Validation stays in the job: :func:`given` hands the parsed values to its constructor, which
refuses a bad one with one sentence. ``tests/jobs/test_job_mapping.py`` checks that every flag of
``unsamv2 mine / train / pretrain / eval``, every flow parameter and every ``prefect.yaml``
parameter is a job field with the same name and default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from unsamv2.errors import InputError

#: ``dest`` of the flags that were not given, in :func:`add_flags`'s ``unset`` mode.
UNSET = None


@dataclass(frozen=True)
class Flag:
    """How one job field appears on the command line. ``aliases``: older flag names, still accepted;
    ``repeat``: for a tuple field, the flag given once per value (e.g. ``dataset``)."""

    field: str
    help: str
    aliases: tuple[str, ...] = ()
    repeat: str | None = None


def defaults(cls: type) -> dict[str, Any]:
    """Every field of the dataclass ``cls`` that has a default, with its default value."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def known(cls: type, values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``values`` as keyword arguments of ``cls``; keys that are not its fields are an InputError."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"{what} has unknown keys {unknown}; valid keys are {sorted(names)}.")
    return dict(values)


def flag_name(cls: type, flag: Flag) -> str:
    """The flag's primary option string, derived from the field (see the module docstring)."""
    if flag.repeat:
        return "--" + flag.repeat.replace("_", "-")
    name = "--" + flag.field.replace("_", "-")
    if _field_type(cls, flag.field) is bool and defaults(cls).get(flag.field) is True:
        return "--no-" + flag.field.replace("_", "-")
    return name


def add_flags(parser: argparse.ArgumentParser | Any, cls: type, flags: Iterable[Flag], *,
              overrides: Mapping[str, Any] | None = None, unset: bool = False) -> None:
    """Add one option per flag to ``parser`` (a parser or an argument group), ``dest`` = the field.

    ``overrides``: defaults of this command that differ from the field's (shown in the help).
    ``unset``: every option defaults to None, so that only the flags given override the values
    that come from elsewhere (a config file, then the job's defaults); see :func:`given`.
    """
    shown = {**defaults(cls), **(overrides or {})}
    for flag in flags:
        if flag.field not in {f.name for f in dataclasses.fields(cls)}:
            raise TypeError(f"{cls.__name__} has no field {flag.field!r}")
        kind = _field_type(cls, flag.field)
        default = shown.get(flag.field)
        names = [flag_name(cls, flag), *flag.aliases]
        options: dict[str, Any] = {"dest": flag.field, "help": _help(flag.help, default, kind)}
        if kind is bool:
            value = not defaults(cls).get(flag.field, False)
            options |= {"action": "store_const", "const": value, "default": None if unset else default}
        elif flag.repeat:
            options |= {"action": "append", "type": _scalar(_element(kind)), "default": None,
                        "metavar": flag.repeat.upper()}
        else:
            options |= {"type": _scalar(kind), "default": None if unset else default}
            if typing.get_origin(kind) is typing.Literal:
                options["choices"] = typing.get_args(kind)
        parser.add_argument(*names, **options)


def given(args: argparse.Namespace, flags: Iterable[Flag]) -> dict[str, Any]:
    """The parsed values of ``flags`` by field; flags left at None (not given in ``unset`` mode, or
    a repeatable flag never given) are left out, so the job's default applies. Repeated values
    become tuples."""
    out: dict[str, Any] = {}
    for flag in flags:
        value = getattr(args, flag.field)
        if value is UNSET:
            continue
        out[flag.field] = tuple(value) if flag.repeat else value
    return out


def _help(text: str, default: Any, kind: Any) -> str:
    if kind is bool or default is None or default == ():
        return text
    shown = ", ".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})".replace("%", "%%")


def _field_type(cls: type, name: str) -> Any:
    """The field's type with ``X | None`` reduced to ``X``."""
    kind = typing.get_type_hints(cls)[name]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = rest[0] if len(rest) == 1 else kind
    return kind


def _element(kind: Any) -> Any:
    """The element type of ``tuple[X, ...]``."""
    args: Sequence[Any] = typing.get_args(kind)
    if typing.get_origin(kind) is not tuple or not args:
        raise TypeError(f"a repeatable flag needs a tuple[X, ...] field, not {kind!r}")
    return args[0]


def _scalar(kind: Any) -> type:
    """The argparse ``type`` of a field type: int, float or str (a Literal: its values' type)."""
    if typing.get_origin(kind) is typing.Literal:
        return type(typing.get_args(kind)[0])
    if kind in (int, float, str):
        return typing.cast(type, kind)
    raise TypeError(f"no command-line flag for a field of type {kind!r}")
