"""What every command module shares: the error handling, logging, `key=value` parsing, the command class
that takes several values after one flag, and the flag groups (`flag_groups`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


class Commands(TyperGroup):
    """Every command's user errors (`ehrmind.errors.UserError`: bad data, bad settings, an endpoint that
    refuses) end as one `error:` line and exit code 2, wherever they are raised; anything else is a bug and
    keeps its traceback."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from ehrmind.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as e:
            fail(e)


class ListOptions(TyperCommand):
    """A command whose repeatable options also take several values after one flag: `--models A B`."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        names = {o for p in self.params if getattr(p, "multiple", False) for o in getattr(p, "opts", ())}
        spread: list[str] = []
        current = None
        for arg in args:
            if arg.startswith("-"):
                current = arg if arg in names else None
                spread.append(arg)
            elif current is not None and spread[-1] != current:
                spread += [current, arg]
            else:
                spread.append(arg)
        return super().parse_args(ctx, spread)


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )


def fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def key_values(pairs: list[str] | None) -> dict[str, object]:
    """`key=value` strings to a dict; values parsed as YAML scalars (numbers, booleans, lists)."""
    from ehrmind.train.recipe import apply_overrides

    return apply_overrides({}, pairs or [])


class FlagGroup:
    """A frozen dataclass of flags that commands take together; see `flag_groups`."""


def flag_groups(command: Callable[..., Any]) -> Callable[..., Any]:
    """Spread each parameter whose default is a `FlagGroup` into the group's flags, in its place (so --help
    keeps their order) with that default's values as their defaults, and call `command` with the group
    made from them. Typer reads the spread signature."""
    signature = inspect.signature(command, eval_str=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for param in signature.parameters.values():
        group = param.default
        if not isinstance(group, FlagGroup):
            params.append(param)
            continue
        hints = typing.get_type_hints(type(group), include_extras=True)
        names = [f.name for f in dataclasses.fields(group)]  # type: ignore[arg-type]
        groups[param.name] = (type(group), names)
        params += [param.replace(name=n, default=getattr(group, n), annotation=hints[n]) for n in names]

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        for name, (cls, names) in groups.items():
            kwargs[name] = cls(**{n: kwargs.pop(n) for n in names})
        return command(**kwargs)

    run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run
