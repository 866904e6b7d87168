"""A command-line parser built from argument dataclasses, without importing torch or transformers.

It follows `transformers.HfArgumentParser`'s conventions (one `--field` per dataclass field, `X | None` fields
take an `X`, booleans accept `--flag`, `--flag true|false` and, when they default to true, `--no_flag`), so that
`--help` and argument errors answer in a fraction of a second instead of after the seconds torch takes to import.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, NoReturn, Sequence

TRUE_WORDS = ("yes", "true", "t", "y", "1")
FALSE_WORDS = ("no", "false", "f", "n", "0")


def string_to_bool(value: str | bool) -> bool:
    """`"true"`/`"false"` (and yes/no/1/0) -> bool; argparse reports anything else as an invalid value."""
    if isinstance(value, bool):
        return value
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _base_type(annotation: Any) -> type:
    """`int | None` -> int; `str` -> str (annotations are strings under `from __future__ import annotations`)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        arguments = [item for item in typing.get_args(annotation) if item is not type(None)]
        if len(arguments) != 1:
            raise TypeError(f"unsupported argument type {annotation}")
        return arguments[0]
    return annotation


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of the dataclass `cls`, in a group titled by its docstring."""
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip() or None)
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        kind = _base_type(hints[item.name])
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()  # type: ignore[misc]
        options: dict[str, Any] = {"default": default, "help": item.metadata.get("help")}
        if kind is bool:
            options.update(type=string_to_bool, nargs="?", const=True, metavar="true|false")
        else:
            options.update(type=kind)
        group.add_argument(f"--{item.name}", **options)
        if kind is bool and default is True:
            group.add_argument(f"--no_{item.name}", action="store_false", dest=item.name, help=argparse.SUPPRESS)


class OneLineErrorParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (`prog: error: message`, exit status 2), without the usage
    block that would bury the message under the dozens of options."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(classes: Sequence[type], prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """An `ArgumentParser` with the options of every dataclass of `classes` (no abbreviations: a mistyped
    `--learning_rat` is an error, not `--learning_rate`)."""
    parser = OneLineErrorParser(prog=prog, description=description, allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for cls in classes:
        add_dataclass_arguments(parser, cls)
    return parser
