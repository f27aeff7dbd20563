"""Errors that name exactly where bad input is: file, row and field."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
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
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class ConfigError(ValueError):
    """A bad option or recipe value; the message says what to change."""
