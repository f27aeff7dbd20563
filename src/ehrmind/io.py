"""File helpers: atomic writes, JSONL that survives being killed mid-write, tables, hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from ehrmind.errors import ConfigError, DataError

TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")


def output_folder(path: str | Path, *, create: bool = True) -> Path:
    """Create an output folder (and its parents); a path that is a file, or a folder that cannot be made,
    is a ConfigError naming it (never a traceback, never a file replaced). `create=False` only checks (a
    command checks its --out before the slow part, e.g. loading a model)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{p} is a file; the output needs a folder there (use another --out)")
        if p.exists():
            break
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create output folder {path}: {e.strerror or e}") from None
    return path


def output_file(path: str | Path) -> Path:
    """The parent folder of an output file, created; a path that is a folder is a ConfigError naming it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; the output is a file (give a file name)")
    output_folder(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; on success it replaces `path` in one step, on any
    failure it is removed (a writer killed or failing never leaves half a file or a stray temporary)."""
    path = output_file(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` so that `path` holds either the old content or the new, never half of it."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(r, ensure_ascii=False, default=str) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: str | Path, *, repair_tail: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file; a bad line raises DataError naming the line.

    With `repair_tail`, an unterminated last line (a writer killed mid-line) is dropped and the file
    rewritten without it, so appending can continue safely.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("is a folder, not a JSONL file", file=path)
    data = path.read_bytes()
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as e:  # issue #16, cause 9: was a traceback
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[e.start]:02x})", file=path, row=line) from None
    lines = raw.split("\n")
    tail = lines.pop()  # text after the last newline: '' when the file ends cleanly
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        rows.append(_json_line(line, path, i))
    if tail.strip():
        if repair_tail:
            atomic_write_text(path, "".join(line + "\n" for line in lines))
        else:
            rows.append(_json_line(tail, path, len(lines) + 1))
    return rows


def _json_line(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON ({e.msg})", file=path, row=lineno) from None
    except RecursionError:  # e.g. 100,000 nested '[': json's decoder recurses per level
        raise DataError("JSON nested too deeply", file=path, row=lineno) from None
    if not isinstance(obj, dict):
        raise DataError("each line must be a JSON object", file=path, row=lineno)
    return obj


def sample_index(value: Any, *, file: str | Path, row: int, samples: int | None = None) -> int:
    """A prediction row's `sample`: a non-negative integer (below `samples` when given), else a DataError
    naming the file, row and field (a resumed folder edited by hand, or another tool's rows)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError("not a non-negative integer", file=file, row=row, field="sample")
    if samples is not None and value >= samples:
        raise DataError(f"sample {value} is outside --samples {samples}", file=file, row=row, field="sample")
    return value


class JsonlAppender:
    """Append JSON lines durably: each batch is one write, flushed and fsynced."""

    def __init__(self, path: str | Path):
        self.path = output_file(path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
        if text:
            self._fh.write(text)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_table(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row_number, record) from a CSV, Parquet or JSONL file; row numbers count data rows from 1.

    CSV cells are read as strings (no NaN guessing), so the task decides how to parse each field.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("expected a file, got a directory", file=path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"unsupported file type {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}", file=path
        )
    if path.stat().st_size == 0:
        raise DataError("file is empty", file=path)
    if suffix == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
            raise DataError(f"cannot parse CSV ({e})", file=path) from None
        records = df.to_dict(orient="records")
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a broken file
            raise DataError(f"cannot read Parquet ({e})", file=path) from None
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON ({e.msg}, line {e.lineno})", file=path) from None
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 text (byte 0x{e.object[e.start]:02x})", file=path) from None
        except RecursionError:
            raise DataError("JSON nested too deeply", file=path) from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError("a .json data file must hold a list of objects", file=path)
        records = data
    else:
        records = read_jsonl(path)
    if not records:
        raise DataError("file has no data rows", file=path)
    yield from enumerate(records, start=1)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_rows(rows: Iterable[dict[str, Any]]) -> str:
    """Content hash of records (order-sensitive), for sources that are not a single file (Hub datasets)."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


MAX_YAML_BYTES = 1_000_000
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000


def read_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """A YAML file read with the safe loader and bounds: at most MAX_YAML_BYTES, UTF-8, and at most
    MAX_YAML_ALIASES alias references, expanding to at most MAX_YAML_NODES values (a few hundred bytes of
    nested aliases otherwise expand to gigabytes once merged or validated). Problems raise ConfigError
    naming the file, never echoing its content."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes; a {what} is at most {MAX_YAML_BYTES:,}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, where: str) -> Any:
    """YAML text with `read_yaml`'s bounds; `where` names the source in errors (a file, `--set a.b`)."""
    try:
        data = yaml.load(text, Loader=_BoundedSafeLoader)  # noqa: S506 - a SafeLoader subclass
        expanded = _expanded_size(data, {})
    except _TooManyAliases:
        raise ConfigError(
            f"{where}: more than {MAX_YAML_ALIASES} YAML aliases (*name); write the values out"
        ) from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{where}: not valid YAML{at} ({getattr(e, 'problem', None) or type(e).__name__})"
        ) from None
    if expanded > MAX_YAML_NODES:
        raise ConfigError(
            f"{where}: its aliases expand to more than {MAX_YAML_NODES:,} values; write the values out"
        )
    return data


def _expanded_size(obj: Any, memo: dict[int, int]) -> int:
    """Values in `obj` with every shared (aliased) list or mapping counted each time it is referenced."""
    if not isinstance(obj, (list, dict)):
        return 1
    key = id(obj)
    if key not in memo:
        memo[key] = 0  # a self-referencing alias counts once instead of looping
        items = obj.values() if isinstance(obj, dict) else obj
        memo[key] = 1 + sum(min(_expanded_size(v, memo), MAX_YAML_NODES + 1) for v in items)
    return memo[key]


class _TooManyAliases(yaml.YAMLError):
    pass


class _BoundedSafeLoader(yaml.SafeLoader):
    """The safe loader, refusing a document with more than MAX_YAML_ALIASES alias references."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _TooManyAliases()
        return super().compose_node(parent, index)
