"""Dataclass configs as command-line interfaces.

Every config in jepaworld is a dataclass whose fields carry a docstring (a string literal on the line
after the field, as in cleanrl/tyro). This module turns such a dataclass, nested ones included, into
argparse options (`--field`, `--section.field`) whose help text is that docstring, and back.
Validation lives in each dataclass's `__post_init__`; a ValueError raised there is reported by the
CLI as an error naming the argument.

Example:
    >>> @dataclasses.dataclass
    ... class Args:
    ...     steps: int = 10
    ...     '''How many steps.'''
    >>> parser = argparse.ArgumentParser()
    >>> add_dataclass_arguments(parser, Args)
    >>> dataclass_from_namespace(Args, parser.parse_args(["--steps", "3"]))
    Args(steps=3)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal

_SCALARS = (int, float, str, Path)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each field of a dataclass to the docstring written under it (empty if none)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """Return (inner type, is_optional) for `X | None`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _argparse_kwargs(tp: Any, default: Any) -> dict[str, Any]:
    inner, optional = _unwrap_optional(tp)
    kwargs: dict[str, Any] = {"default": default}
    if typing.get_origin(inner) is Literal:
        choices = typing.get_args(inner)
        kwargs.update(type=type(choices[0]), choices=choices)
    elif inner is bool:
        # `--flag` alone means true; `--flag false` is accepted too
        kwargs.update(type=_parse_bool, nargs="?", const=True, metavar="{true,false}")
    elif inner in _SCALARS:
        kwargs["type"] = inner
    elif typing.get_origin(inner) is tuple:
        elem = typing.get_args(inner)[0]
        kwargs.update(type=elem, nargs="+")
    else:
        raise TypeError(f"config field type {tp!r} is not supported on the command line")
    if optional:
        base = kwargs.get("type", str)
        kwargs["type"] = lambda s, base=base: None if s.lower() == "none" else base(s)
    return kwargs


def _field_default(f: dataclasses.Field, instance: Any) -> Any:
    """A field's default: from `instance` (a parent's default_factory result) when given."""
    if instance is not None:
        return getattr(instance, f.name)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default if f.default is not dataclasses.MISSING else None


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    prefix: str = "",
    skip: tuple[str, ...] = (),
    defaults: Any = None,
    enforce_required: bool = True,
) -> None:
    """Add one option per (nested) dataclass field, help text from the field's docstring.

    A nested dataclass field takes its defaults from the parent's default for it (e.g. a preset
    `model: ModelConfig = field(default_factory=video_model)`), so `--help` shows what runs. A field
    with `metadata={"positional": True}` becomes a positional argument. With enforce_required
    False, options without a default are optional to argparse (see `missing_required`)."""
    docs = field_docs(cls)
    hints = _resolved_hints(cls)
    group = parser.add_argument_group(prefix.rstrip(".") or None) if prefix else parser
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp = hints[f.name]
        default = _field_default(f, defaults)
        if dataclasses.is_dataclass(tp):
            add_dataclass_arguments(
                parser,
                tp,
                f"{prefix}{f.name}.",
                defaults=default,
                enforce_required=enforce_required,
            )
            continue
        kwargs = _argparse_kwargs(tp, default)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        help_text = docs.get(f.name, "")
        if f.metadata.get("positional"):  # field(metadata={"positional": True}): `cmd VALUE`
            kwargs.pop("default")
            if kwargs.get("nargs") == "?":
                raise TypeError(f"{cls.__name__}.{f.name}: a bool cannot be positional")
            group.add_argument(f"{prefix}{f.name}", help=help_text, **kwargs)
            continue
        if not required:
            help_text = f"{help_text} (default: {default})".strip()
        flags = [f"--{prefix}{f.name}".replace("_", "-")]
        if not prefix and len(f.name) == 1:
            flags.append(f"-{f.name}")  # one-letter fields also get a short flag: -k 5
        group.add_argument(
            *flags,
            dest=f"{prefix}{f.name}",
            required=required and enforce_required,
            help=help_text,
            **kwargs,
        )


def missing_required(cls: type, ns: argparse.Namespace) -> list[str]:
    """Options of `cls` without a default that `ns` leaves unset (top level only), as flags."""
    values = vars(ns)
    return [
        f"--{f.name.replace('_', '-')}"
        for f in dataclasses.fields(cls)
        if f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        and values.get(f.name) is None
    ]


def dataclass_from_namespace(cls: type, ns: argparse.Namespace, prefix: str = "") -> Any:
    """Build `cls` from parsed options; `__post_init__` validation runs here."""
    hints = _resolved_hints(cls)
    values = vars(ns)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            try:
                kwargs[f.name] = dataclass_from_namespace(tp, ns, prefix=f"{key}.")
            except ValueError as e:  # name the nested option: "model.max_len: ..."
                raise ValueError(f"{key}.{e}") from None
        elif key in values:
            value = values[key]
            if typing.get_origin(_unwrap_optional(tp)[0]) is tuple and value is not None:
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a (nested) dataclass; Paths become strings."""

    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(dataclasses.asdict(cfg))


def from_dict(cls: type, data: dict[str, Any], source: str = "config") -> Any:
    """Rebuild a (nested) dataclass from `to_dict` output; an unknown key is an error, a missing
    key takes the field's default (a missing key without a default is a TypeError from the class)."""
    hints = _resolved_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} for {cls.__name__}")
    kwargs: dict[str, Any] = {}
    for name in names & set(data):
        tp, _ = _unwrap_optional(hints[name])
        value = data[name]
        if dataclasses.is_dataclass(tp):
            value = from_dict(tp, value, source=f"{source}.{name}")
        elif tp is Path and value is not None:
            value = Path(value)
        elif typing.get_origin(tp) is tuple and value is not None:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def require(condition: bool, name: str, message: str) -> None:
    """Raise ValueError naming the field when a validation condition fails."""
    if not condition:
        raise ValueError(f"{name}: {message}")


def read_json_object(
    path: Path, error: type[Exception], what: str, missing_hint: str
) -> dict[str, Any]:
    """Read a JSON object from `path`; a missing file, invalid JSON or another JSON type raise
    `error` with a message that names the file."""
    if not path.is_file():
        raise error(f"{path}: {what} missing ({missing_hint})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: {what} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise error(f"{path}: {what} is not a JSON object")
    return data
