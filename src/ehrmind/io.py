"""File helpers: atomic writes, JSONL that survives being killed mid-write, tables, hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from ehrmind.errors import ConfigError, DataError, UserError

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
    """The parent folder of an output file, created; a path that is a folder is a ConfigError naming it, and
    so is a symbolic link or a special file (a device, a pipe): an output is written as a plain file of its
    own, never through a link into another file, never replacing `/dev/stdout` or `/dev/null` (issue #31)."""
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(
            f"{path} is a symbolic link; outputs are written as plain files, not through links "
            "(remove the link, or give another path)"
        )
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; the output is a file (give a file name)")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} is not a regular file (a device or a pipe?); give a file path")
    output_folder(path.parent)
    return path


NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Errors of a write that ran out of room: disk full, quota, the file size limit (`ulimit -f`)."""
WRITE_ERRNOS = NO_ROOM | {
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.ENAMETOOLONG,
    errno.EEXIST,
    errno.ELOOP,
    errno.EMLINK,
    errno.ETXTBSY,
    errno.EIO,
}
"""Errors of writing an output that the user can act on (free space, write elsewhere); any other OSError
(a missing file the code expected, a refused connection) keeps its traceback."""


class WriteError(UserError):
    """An output that could not be written: disk full, a read-only or unwritable place, a file in the way.
    One `error:` line naming the path and the cause (the OSError's strerror), never a traceback."""

    def __init__(self, path: str | Path, cause: str, code: int | None = None, *, action: str = "write"):
        path = _target(path)  # the output, not the temporary it was being written in
        self.path, self.errno = path, code
        if code in NO_ROOM:
            hint = "; free some space (or raise the limit) and rerun"
        elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = "; write somewhere else"
        else:
            hint = ""
        super().__init__(f"cannot {action} {path}: {cause}{hint}")


def _target(name: str | os.PathLike[str]) -> Path:
    """The output a path stands for: a temporary file or folder an output is written in first
    (`.NAME.RANDOM.tmp`, as `atomic_path` and `atomic_folder` name them) stands for NAME."""
    parts = [
        part[1:].rsplit(".", 2)[0]
        if part.startswith(".") and part.endswith(".tmp") and part.count(".") >= 3
        else part
        for part in Path(os.fsdecode(name)).parts
    ]
    return Path(*parts)


def write_error(path: str | Path, error: OSError) -> WriteError:
    """`error` (an OSError of writing under `path`) as a WriteError naming the file it names (the output
    for one of `atomic_path`'s temporaries), or `path` when it names none."""
    named = _target(error.filename) if error.filename else Path(path)
    return WriteError(named, error.strerror or str(error), error.errno)


_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_TORCH_WRITER = ("inline_container.cc", "PytorchStreamWriter")


def _library_write_errno(e: BaseException) -> int | None:
    """The errno of a library's failed write that is not an OSError: safetensors' SafetensorError ('I/O
    error: … (os error 28)'), tokenizers' Exception likewise; torch.save's RuntimeError from its zip writer
    ('[enforce fail at inline_container.cc] … unexpected pos', 'PytorchStreamWriter failed writing') says no
    errno: 0. None for anything else."""
    if isinstance(e, OSError):
        return e.errno if e.errno in WRITE_ERRNOS else None
    text = str(e)
    match = _OS_ERROR.search(text)
    if match and int(match.group(1)) in WRITE_ERRNOS:
        return int(match.group(1))
    if isinstance(e, RuntimeError) and any(mark in text for mark in _TORCH_WRITER):
        return 0
    return None


def _likely_cause(folder: Path) -> tuple[str, int | None]:
    """Why a write under `folder` was cut short when the library did not say: a full file system, or the
    process's file size limit (`ulimit -f`)."""
    import resource

    with contextlib.suppress(OSError):
        st = os.statvfs(folder)
        if st.f_bavail * st.f_frsize < (1 << 20):
            return os.strerror(errno.ENOSPC), errno.ENOSPC
    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
        return f"{os.strerror(errno.EFBIG)} (the file size limit, ulimit -f)", errno.EFBIG
    return "the write was cut short (disk full?)", None


@contextlib.contextmanager
def saving(folder: str | Path) -> Iterator[None]:
    """`writing` for a block in which libraries save into `folder` (save_pretrained, torch.save, a Trainer's
    checkpoints), whose failed writes come as other exceptions too (`_library_write_errno`): each becomes
    a WriteError naming the file or `folder`."""
    folder = Path(folder)
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        cause = next((c for c in _causes(e) if _library_write_errno(c) is not None), None)
        if cause is None:
            raise
        if isinstance(cause, OSError):
            raise write_error(folder, cause) from e
        code = _library_write_errno(cause)
        if code:
            raise WriteError(folder, os.strerror(code), code) from e
        raise WriteError(folder, *_likely_cause(folder)) from e


def _causes(e: BaseException) -> Iterator[BaseException]:
    """`e` and the exceptions it was raised from (`raise … from`: a library wrapping an OSError); not one it
    merely happened while handling, which may be another matter."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside `path` to save into (`saving`); on success its files replace those in
    `path` (the folder itself renamed into place when `path` is new or empty), on failure it is removed: a
    failed save never leaves a folder that looks complete."""
    path = output_folder(path, create=False)
    output_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with writing(path):
        tmp.mkdir()  # with the umask's permissions, as the folder would have had (mkdtemp's are 0700)
    try:
        with saving(path):
            yield tmp
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            if not path.exists():
                os.replace(tmp, path)
                return
            for entry in sorted(tmp.iterdir()):
                os.replace(entry, path / entry.name)
            tmp.rmdir()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Run a block that writes `path` (a file, or a folder a library saves into): an OSError in
    `WRITE_ERRNOS` becomes a WriteError naming the path and the cause."""
    try:
        yield
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        raise write_error(path, e) from e


def _new_temporary(path: Path) -> Path:
    """A new empty file `.NAME.RANDOM.tmp` beside `path`, with the permissions a plain `open` gives (the
    umask's; tempfile.mkstemp's 0600 would make every output readable by its owner only)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; on success it replaces `path` in one step, on any
    failure it is removed (a writer killed or failing never leaves half a file or a stray temporary, and the
    old file stays as it was). A symbolic link or special file at `path` is refused (`output_file`). A failed
    write (disk full, read-only) is a WriteError naming `path`."""
    path = output_file(path)
    tmp: Path | None = None
    try:
        tmp = _new_temporary(path)
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise WriteError(path, e.strerror or str(e), e.errno) from e
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
    """Append JSON lines durably: each batch is one write, fsynced. A batch that cannot be written whole
    (disk full) is cut off again, so the file holds complete lines only and a rerun continues it; the error
    is a WriteError naming the file. A symbolic link at `path` is refused (`output_file`): appending would
    write through it into another file."""

    def __init__(self, path: str | Path):
        self.path = output_file(path)  # not a link (O_NOFOLLOW: nor one made since)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        with writing(self.path):
            self._fd: int | None = os.open(self.path, flags, 0o666)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        data = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")
        if not data or self._fd is None:
            return
        size = os.fstat(self._fd).st_size
        try:
            with writing(self.path):
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
        except BaseException:
            with contextlib.suppress(OSError):  # a rerun also drops a torn last line (read_jsonl)
                os.ftruncate(self._fd, size)
            raise

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

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
    except _DuplicateKey as e:
        raise ConfigError(f"{where}: {e}") from None
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


class _DuplicateKey(yaml.YAMLError):
    """A mapping that gives one key twice: PyYAML keeps the last value silently (issue #31)."""


class _BoundedSafeLoader(yaml.SafeLoader):
    """The safe loader, refusing a document with more than MAX_YAML_ALIASES alias references, and a mapping
    that gives a key twice (naming it and both lines; a `<<: *base` merge may still be overridden)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key not in first:
                        first[key] = line
                        continue
                except TypeError:  # an unhashable key: the base class says so
                    continue
                shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
                where = f"line {line}" if first[key] == line else f"lines {first[key]} and {line}"
                raise _DuplicateKey(f"key {shown} is given twice ({where}); keep one")
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _TooManyAliases()
        return super().compose_node(parent, index)
