"""What every command module shares: the error handling, logging, `key=value` parsing, the command class
that takes several values after one flag, and the flag groups (`flag_groups`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
import typing
from collections.abc import Callable, Collection
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


class Commands(TyperGroup):
    """Every command's user errors (`ehrmind.errors.UserError`: bad data, bad settings, an endpoint that
    refuses, an output that cannot be written) end as one `error:` line and exit code 2, wherever they are
    raised. So does an OSError of writing that no writer turned into a `WriteError` (`ehrmind.io.writing`):
    one with an errno of `ehrmind.io.WRITE_ERRNOS` that names a file, or one of running out of room (disk
    full, quota, file size limit), named or not (issue #31). Anything else is a bug and keeps its traceback
    (a missing file the code expected, a refused connection). `ehrmind --verbose` logs the traceback under
    such a line (the library's exception under a WriteError)."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from ehrmind.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as e:
            if e.__cause__ is not None:  # e.g. the OSError under a WriteError, for `ehrmind --verbose`
                logging.getLogger("ehrmind").debug("%s", e, exc_info=e.__cause__)
            fail(e)
        except OSError as e:
            error = _write_error(e, self._out(ctx))
            if error is None:
                raise
            logging.getLogger("ehrmind").debug("%s", error, exc_info=True)
            fail(error)

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_INVOKED] = (name, command, list(rest))  # for `_out`: the command's own context is gone
        return name, command, rest

    @staticmethod
    def _out(ctx) -> str | None:  # type: ignore[no-untyped-def]
        """The invoked command's `--out`, read again from its arguments (None when it has none)."""
        name, command, args = ctx.meta.get(_INVOKED, (None, None, None))
        if command is None:
            return None
        try:
            parsed = command.make_context(name, list(args), parent=ctx, resilient_parsing=True)
        except Exception:  # noqa: BLE001 - only a better name for the error line is at stake
            return None
        out = parsed.params.get("out")
        return str(out) if out else None


_INVOKED = "ehrmind.invoked"


def _write_error(e: OSError, out: str | None = None) -> Exception | None:
    """An OSError of writing as the WriteError a writer would have raised (naming the file it names, else
    the command's `--out`), or None for any other OSError."""
    import errno

    from ehrmind.io import NO_ROOM, WRITE_ERRNOS, WriteError, write_error

    if e.errno in NO_ROOM and not e.filename:
        return WriteError(out or "the outputs", e.strerror or str(e), e.errno)
    if e.errno not in WRITE_ERRNOS or not e.filename:
        return None
    named = write_error(e.filename, e)
    if e.errno in NO_ROOM or e.errno == errno.EROFS:
        return named
    # EACCES, ENOTDIR, …: reading can meet them too, so the line does not say which it was
    return WriteError(named.path, e.strerror or str(e), e.errno, action="use")


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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes (as Rich's console does), not the stream of the
    moment logging was set up, which a caller such as a test runner may have closed since."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_USERINFO = re.compile(r"(?<=://)[^/\s@:]+:[^/\s@]*@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|secret|password|passwd|sig|signature|auth)=)[^&\s\"'#]+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    """`text` with credentials masked: `user:password@` in URLs, secret-looking query parameters (`?key=…`,
    `token=…`) and bearer tokens become `***` (issue #31: httpx logs every request's URL)."""
    text = _USERINFO.sub("***@", text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    return _BEARER.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Masks credentials in every log record before any handler writes it (ours and other libraries')."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


LOG_LEVEL = {"ehrmind": logging.INFO, "others": logging.WARNING}
"""ehrmind's own progress at INFO, other libraries' chatter (transformers, httpx: a line per request) only
from WARNING; `ehrmind --verbose` / `--quiet` change it for every command."""


def setup_logging(verbose: bool = False) -> None:
    """Logs go to stderr (stdout keeps what a command prints as its result): through Rich on a terminal, as
    plain unwrapped lines with a time stamp otherwise (CI logs, files), so no line is cut at 80 columns."""
    import sys

    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    ours = logging.DEBUG if verbose else LOG_LEVEL["ehrmind"]
    handler.addFilter(RedactSecrets())
    logging.basicConfig(level=LOG_LEVEL["others"], handlers=[handler], force=True)
    logging.getLogger("ehrmind").setLevel(ours)
    for name in ("httpx", "httpcore"):  # one INFO line per HTTP request
        logging.getLogger(name).setLevel(max(logging.WARNING, LOG_LEVEL["others"]))


def fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def key_values(pairs: list[str] | None, *, text: Collection[str] = ()) -> dict[str, object]:
    """`key=value` strings to a dict. A value is read as a YAML scalar (numbers, booleans, lists), except for
    the keys in `text` (options typed as text, e.g. a system prompt), which keep the value as written, and a
    value YAML cannot read as a scalar (plain text with `: ` in it), which stays the text given: no quoting
    needed for prose."""
    from ehrmind.errors import ConfigError
    from ehrmind.io import parse_yaml

    out: dict[str, object] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}")
        if key in text:
            out[key] = value
            continue
        try:
            parsed = parse_yaml(value, key)
        except ConfigError:
            parsed = value
        if isinstance(parsed, dict) and not value.lstrip().startswith("{"):
            parsed = value  # `Answer: a number` is prose, not a mapping
        out[key] = parsed
    return out


def task_option_values(task: str, pairs: list[str] | None) -> dict[str, object]:
    """`--task-option key=value` pairs for `task`, its text-typed options (system_prompt, …) kept as written.
    A key given twice, or given no value, is refused (the last one would win silently; an empty value would
    mean the default for one option and empty text for another); the values are checked by the task's
    options model where the task is made."""
    if not pairs:
        return {}
    from ehrmind.errors import ConfigError
    from ehrmind.registry import display_name, text_options

    seen: set[str] = set()
    for item in pairs:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ConfigError(f"--task-option expects key=value, got {display_name(repr(item))}")
        if key in seen:
            raise ConfigError(f"--task-option {display_name(key)} is given twice; give it once")
        if not value:
            raise ConfigError(
                f"--task-option {display_name(key)}= has no value; leave it out for the task's default"
            )
        seen.add(key)
    return key_values(pairs, text=text_options(task))


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
