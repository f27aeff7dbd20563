"""Errors that name exactly where bad input is: file, row and field."""

from __future__ import annotations

from pathlib import Path

EXCERPT_CHARS = 40
"""Longest field value an error message quotes; a longer one may be patient text (a shifted CSV column) and
is described, never shown."""
MAX_MESSAGE_CHARS = 500


def excerpt(value: object) -> str:
    """A field value for an error message: quoted when short, otherwise only its length."""
    text = str(value)
    if len(text) <= EXCERPT_CHARS:
        return repr(text) if isinstance(value, str) else text
    return f"a {len(text):,}-character text (not shown)"


def _bounded(message: str) -> str:
    """No message grows with the input (a 200 KB label, a YAML alias bomb): longer ones are cut."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 40] + f"… ({len(message):,} characters in all)"


class UserError(Exception):
    """Something the user can fix (bad data, a bad setting, an endpoint that refuses): the command line prints
    its message as one `error:` line with exit code 2. Any other exception is a bug and keeps its traceback."""


class DataError(UserError, ValueError):
    """Bad input data. The message names the file, the row (1-based, as a person counts) and the field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        field: str | None = None,
    ):
        self.file, self.row, self.field = file, row, field
        where = []
        if file is not None:
            where.append(f"{file}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(_bounded(f"{': '.join([', '.join(where), message]) if where else message}"))


class ConfigError(UserError, ValueError):
    """A bad option or recipe value; the message says what to change."""

    def __init__(self, message: object = ""):
        super().__init__(_bounded(str(message)))
