"""The columnar event reader: `iter_timelines`' default, with the row-by-row reader's results.

A batch of rows (pyarrow, `tables.iter_arrow_batches`, read ahead in a second thread) becomes numpy columns:
subject ids, codes, units, text values and table names are dictionary-encoded, so the Python work (parsing an
id, checking and canonicalising a code, stripping a unit) is done once per distinct value, never per row, and
a code once per reader (`_Codes`); times are integers (microseconds since 1970), and the day-end and
time-zone rules are array arithmetic. The rows of the subjects that end in a batch are sorted by subject, then
by `readers._event_order`'s key (`numpy.lexsort`, stable like Python's sort; strings ranked in Python's order),
and each subject becomes a `Timeline` whose Event objects are made only when something reads them (the
serializer, for subjects with examples). A labeler reads `Timeline.for_labels`: only the rows it looks at
(`Labeler.wanted`, decided once per code), so labeling makes a few Python objects per subject, not one per
event. The last subject of a batch is carried to the next batch (and file) until it ends: memory is a
batch plus the largest subject.

The results are the row reader's (`readers._TimelineReader`, kept as the reference: `reader="rows"`): the
same events in the same order, the same counts and examples in `ReadStats`, and the same errors naming file,
row and field (a batch is checked as a whole and its first bad row is raised, as the row reader would).
tests/test_columnar.py compares the two on hostile files and on every labeler over the MIMIC-IV demo.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ehrmind.errors import DataError
from ehrmind.tasks.ehrshot.codes import Vocabulary
from ehrmind.tasks.ehrshot.readers import (
    BIRTH_CODES,
    MIMIC_TIMED_CODES,
    OMOP_TABLES,
    STATIC_PREFIXES,
    Event,
    ReadStats,
    Timeline,
    _check_code,
    _tally,
    _value,
    appears_again,
    parse_subject,
    parse_time,
    resolve_columns,
    unknown_code,
)
from ehrmind.tasks.ehrshot.tables import iter_arrow_batches

_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
DAY_US = 86_400_000_000
_TO_DAY_END_US = (23 * 60 + 59) * 60_000_000
_MIN_US = (datetime.min - _EPOCH) // _US
_MAX_US = (datetime.max - _EPOCH) // _US
_NO_TIME = np.iinfo(np.int64).min
"""The sort key of a missing time (static facts first) or end (events without an end first)."""
_MAX_CACHED_TIMES = 1_000_000
_UNIT_FACTOR = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
_STRING_ROLES = ("code", "table", "text_value", "unit")
"""Columns read from Parquet as dictionaries (each distinct value decoded once)."""

Wanted = Callable[[str, str], bool]
"""`Labeler.wanted`: (code, canonical code) -> whether the labeler looks at events of this code."""


class _Codes:
    """Every distinct code cell a reader has seen, checked once: its stripped and canonical spellings, the
    unit it carries, and flags as numpy arrays indexed by code id (grown by doubling). Append-only, so the ids
    that chunks and timelines hold stay valid; it grows with the distinct codes of the data (a few hundred
    bytes each)."""

    FLAGS = ("unknown", "static", "birth", "timed", "wanted")

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.stripped: list[str] = []
        self.canonical: list[str] = []
        self.unit: list[str | None] = []
        self._flags = np.zeros((len(self.FLAGS), 1024), bool)

    def add(self, raw: Any, stripped: str, canonical: str, unit: str | None, flags: dict[str, bool]) -> int:
        i = self.ids[raw] = len(self.stripped)
        self.stripped.append(stripped)
        self.canonical.append(canonical)
        self.unit.append(unit)
        if i + 1 >= self._flags.shape[1]:  # one spare column: id -1 reads it (all False)
            grown = np.zeros((len(self.FLAGS), 2 * self._flags.shape[1]), bool)
            grown[:, : self._flags.shape[1]] = self._flags
            self._flags = grown
        self._flags[:, i] = [flags[name] for name in self.FLAGS]
        return i

    def flag(self, name: str) -> np.ndarray:
        """A flag by code id (False for id -1 and for ids not given yet)."""
        return self._flags[self.FLAGS.index(name)]

    def ranks(self, code: np.ndarray) -> np.ndarray:
        """The rank of each code id of `code` among those ids, in the order of (canonical, stripped code):
        only the codes at hand are sorted, so new codes cost nothing until they are sorted with."""
        ids, inverse = np.unique(code, return_inverse=True)
        order = sorted(range(len(ids)), key=lambda k: (self.canonical[ids[k]], self.stripped[ids[k]]))
        rank = np.empty(len(ids), np.int64)
        rank[order] = np.arange(len(ids))
        return rank[inverse.reshape(-1)]


@dataclass(slots=True)
class _Chunk:
    """Rows of whole subjects (or of the subject still being read), as numpy columns. `code` is a code id
    (`_Codes`); `text`, `unit` and `table` are ids into `strings`, whose entry 0 ("") stands for None (no
    stripped unit, text or table is empty), and a `unit` of -1 means the unit the code carries."""

    key: np.ndarray  # int64: the subject (an index into the reader's `subjects`)
    timed: np.ndarray  # bool: has a time (else a static fact)
    time: np.ndarray  # int64 microseconds since 1970 (0 when untimed)
    has_end: np.ndarray
    end: np.ndarray
    has_num: np.ndarray
    num: np.ndarray  # float64 (0.0 when none)
    code: np.ndarray
    text: np.ndarray
    unit: np.ndarray
    table: np.ndarray
    strings: list[str]

    ARRAYS = ("key", "timed", "time", "has_end", "end", "has_num", "num", "code", "text", "unit", "table")
    STRING_IDS = ("text", "unit", "table")

    def __len__(self) -> int:
        return len(self.key)

    def take(self, index: Any) -> _Chunk:
        """The rows at `index` (a slice or an index array); the strings are shared."""
        return _Chunk(*(getattr(self, name)[index] for name in self.ARRAYS), self.strings)

    @classmethod
    def concat(cls, chunks: list[_Chunk]) -> _Chunk:
        if len(chunks) == 1:
            return chunks[0]
        strings: list[str] = []
        parts: dict[str, list[np.ndarray]] = {name: [] for name in cls.ARRAYS}
        for c in chunks:
            for name in cls.ARRAYS:
                a = getattr(c, name)
                if name in cls.STRING_IDS:
                    a = np.where(a > 0, a + len(strings), a)  # 0 (None) and -1 (the code's unit) stay
                parts[name].append(a)
            strings.extend(c.strings)
        return cls(*(np.concatenate(parts[name]) for name in cls.ARRAYS), strings)

    def sorted(self, codes: _Codes) -> _Chunk:
        """Rows by subject (kept in their order), static facts first, then `readers._event_order`: time,
        canonical code, code, then (for rows equal in all of those) number, text, unit, end and table."""
        runs = np.concatenate(([0], np.cumsum(self.key[1:] != self.key[:-1])))
        time = np.where(self.timed, self.time, _NO_TIME)
        code = codes.ranks(self.code)
        order = np.lexsort((code, time, runs))
        runs, time, code = runs[order], time[order], code[order]
        same = (runs[1:] == runs[:-1]) & (time[1:] == time[:-1]) & (code[1:] == code[:-1])
        if same.any():
            order = self._break_ties(order, same, codes)
        return self.take(order)

    def _break_ties(self, order: np.ndarray, same: np.ndarray, codes: _Codes) -> np.ndarray:
        """`order` with each run of rows equal in subject, time and code sorted by the rest of the key."""
        tied = np.zeros(len(order), bool)
        tied[1:] |= same
        tied[:-1] |= same
        at = np.flatnonzero(tied)
        rows = order[at]
        group = np.cumsum(np.concatenate(([True], ~same)))[at]
        code, unit = self.code[rows], self.unit[rows]
        # one ranking of the chunk's strings and the units of the codes involved (ids past the chunk's)
        carried = np.unique(code[unit < 0])
        rank = _string_ranks(self.strings + [codes.unit[c] or "" for c in carried.tolist()] + [""])
        of_code = len(self.strings) + np.minimum(np.searchsorted(carried, code), len(carried))
        unit_rank = np.where(unit >= 0, rank[np.maximum(unit, 0)], rank[of_code])
        number = np.where(self.has_num[rows], self.num[rows] + 0.0, -np.inf)  # -0.0 is 0.0, as in Python
        end = np.where(self.has_end[rows], self.end[rows], _NO_TIME)
        keys = (rank[self.table[rows]], end, unit_rank, rank[self.text[rows]], number, group)
        order = order.copy()
        order[at] = rows[np.lexsort(keys)]
        return order


def _string_ranks(strings: list[str]) -> np.ndarray:
    """Each string's rank in Python's order (equal strings, equal ranks)."""
    if not strings:
        return np.zeros(0, np.int64)
    return np.unique(np.array(strings, dtype=object), return_inverse=True)[1].astype(np.int64)


class _Strings:
    """A batch's string table: id 0 is "" (None)."""

    def __init__(self) -> None:
        self.items: list[str] = [""]
        self.ids: dict[str, int] = {"": 0}

    def id(self, s: str | None) -> int:
        if not s:
            return 0
        i = self.ids.get(s)
        if i is None:
            i = self.ids[s] = len(self.items)
            self.items.append(s)
        return i


@dataclass(slots=True)
class _Problem:
    """A bad row found in a batch; the first by `order` is raised: (0 for a problem found with the whole batch,
    else 1; the row's position; the row reader's order of checks: subject, code, time, end)."""

    order: tuple[int, int, int]
    error: DataError


class ColumnarReader:
    """The state of `iter_timelines` across files (as `readers._TimelineReader`): the subject still being
    read, the subjects already done, the codes seen and parsed times."""

    def __init__(
        self,
        vocab: Vocabulary | None,
        strict_codes: bool,
        day_end: bool,
        stats: ReadStats,
        timed_codes: Sequence[str] = MIMIC_TIMED_CODES,
        wanted: Wanted | None = None,
    ):
        self.vocab, self.strict_codes, self.day_end, self.stats = vocab, strict_codes, day_end, stats
        self.timed_codes = tuple(timed_codes)
        self._timed_prefixes = tuple(p + "//" for p in self.timed_codes)
        self.wanted = wanted
        self.codes = _Codes()
        self.parsed_times: dict[Any, datetime | None] = {}
        self.keys: dict[Any, int] = {}
        self.subjects: list[Any] = []
        self.done: set[int] = set()
        self.carry: list[_Chunk] = []
        self._last_codes: tuple[Any, list[Any], np.ndarray] | None = None
        self._dictionaries: dict[str, tuple[Any, list[Any]]] = {}
        self.path = Path()
        self.colmap: dict[str, str] = {}

    # -------------------------------------------------------------------------------- files and subjects

    def read_file(self, path: Path, *, sort: bool, batch_rows: int) -> Iterator[Timeline]:
        """Read one event file, yielding each subject that ends in it."""
        self.path, self.colmap = path, resolve_columns(path)
        roles = list(self.colmap)
        dictionaries = [self.colmap[r] for r in _STRING_ROLES if r in self.colmap]
        batches = _ReadAhead(_file_batches(path, list(self.colmap.values()), sort, batch_rows, dictionaries))
        try:
            for rows, arrays in batches:
                self.stats.rows += len(rows)
                chunk = self._chunk(dict(zip(roles, arrays, strict=True)), rows)
                yield from self._subjects(chunk)
        finally:
            batches.close()

    def finish(self) -> Iterator[Timeline]:
        """The subject still being read, if any."""
        if self.carry:
            chunk, self.carry = _Chunk.concat(self.carry), []
            yield from self._timelines(chunk)

    def _subjects(self, chunk: _Chunk) -> Iterator[Timeline]:
        """The subjects of `chunk` that end in it, as Timelines; its last subject is carried on. Only the rows
        of a subject read across batches are copied (the rest are views of the batch's columns)."""
        if not len(chunk):
            return
        key = chunk.key
        changes = (np.flatnonzero(key[1:] != key[:-1]) + 1).tolist()
        begin = 0
        if self.carry and key[0] == self.carry[0].key[0]:
            if not changes:
                self.carry.append(chunk)
                return
            begin = changes[0]
            yield from self._timelines(_Chunk.concat([*self.carry, chunk.take(slice(0, begin))]))
        elif self.carry:
            yield from self._timelines(_Chunk.concat(self.carry))
        last = changes[-1] if changes else 0
        self.carry = [chunk.take(slice(last, None))]
        if last > begin:
            yield from self._timelines(chunk.take(slice(begin, last)))

    def _timelines(self, chunk: _Chunk) -> Iterator[Timeline]:
        """One Timeline per subject of a chunk of whole subjects (in file order: a subject's rows are sorted
        when its events are first read, and its labeler's rows now)."""
        key = chunk.key
        bounds = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1, [len(key)]))
        starts = bounds[:-1]
        timed = chunk.timed
        n_timed = np.add.reduceat(timed.astype(np.int64), starts).tolist()
        first = np.minimum.reduceat(np.where(timed, chunk.time, np.iinfo(np.int64).max), starts).tolist()
        last = np.maximum.reduceat(np.where(timed, chunk.time, _NO_TIME), starts).tolist()
        if self.wanted is not None:
            wanted = np.flatnonzero(self.codes.flag("wanted")[chunk.code])
            cuts = np.searchsorted(wanted, bounds).tolist()
        bounds_list = bounds.tolist()
        for i, (a, b) in enumerate(zip(bounds_list[:-1], bounds_list[1:], strict=True)):
            k = int(key[a])
            self.done.add(k)
            self.stats.subjects += 1
            subject = self.subjects[k]
            span = (_datetime(first[i]), _datetime(last[i])) if n_timed[i] else (None, None)
            view = None
            if self.wanted is not None:
                rows = chunk.take(wanted[cuts[i] : cuts[i + 1]]).sorted(self.codes)
                view = _view(subject, rows, self.codes, span)
            loader = _Loader(chunk, self.codes, a, b)
            yield Timeline(subject, n_static=b - a - n_timed[i], loader=loader, span=span, for_labels=view)

    # -------------------------------------------------------------------------------- one batch

    def _chunk(self, cols: dict[str, Any], rows: np.ndarray) -> _Chunk:
        """A batch's columns (by role) as a chunk; DataError for its first bad row."""
        n = len(rows)
        problems: list[_Problem] = []
        strings = _Strings()
        key = self._keys(cols["subject_id"], rows, problems)
        raw, code_of_value, code_index = self._codes(cols["code"], rows, problems)
        timed, t = self._times(cols["time"], rows, problems, "time", "unparseable time")
        has_end, end = (
            self._times(cols["end"], rows, problems, "end", "unparseable end time")
            if "end" in cols
            else (np.zeros(n, bool), np.zeros(n, np.int64))
        )
        if problems:
            raise min(problems, key=lambda p: p.order).error
        code = code_of_value[code_index]
        if not timed.all():
            where = np.flatnonzero(~timed)
            self.stats.untimed += len(where)
            self._tally(raw, code_of_value, code_index[where], where, rows, "untimed")
        if self.codes.flag("unknown")[code].any():
            self._tally(raw, code_of_value, code_index, np.arange(n), rows, "unknown")
        if self.day_end:
            birth, timed_code = self.codes.flag("birth")[code], self.codes.flag("timed")[code]
            t, end = self._move_to_day_end(t, timed, end, has_end, birth, timed_code)
        has_num, num, value_text = self._values(cols.get("numeric_value"), n, strings)
        return _Chunk(
            key,
            timed,
            t,
            has_end,
            end,
            has_num,
            num,
            code,
            self._texts(cols.get("text_value"), value_text, strings),
            self._units(cols.get("unit"), n, strings),
            self._tables(cols.get("table"), n, strings),
            strings.items,
        )

    def _error(self, message: str, row: int, role: str) -> DataError:
        return DataError(message, file=self.path, row=row, field=self.colmap[role])

    def _keys(self, col: Any, rows: np.ndarray, problems: list[_Problem]) -> np.ndarray:
        """Each row's subject key; problems for ids that are not ids, and for a subject seen before that
        comes back after others."""
        if pa.types.is_integer(col.type) and not col.null_count:
            key, starts = self._integer_keys(col)
            return self._check_grouped(key, starts, rows, problems)
        values, index, first = _distinct(col)
        keys = np.full(len(values) + 1, -1, np.int64)
        for d, raw in enumerate(values):
            if first[d] < 0:
                continue
            try:
                subject = parse_subject(raw)
            except ValueError as e:
                problems.append(
                    _Problem((1, first[d], 0), self._error(str(e), int(rows[first[d]]), "subject_id"))
                )
                continue
            k = self.keys.get(subject)
            if k is None:
                k = self.keys[subject] = len(self.subjects)
                self.subjects.append(subject)
            keys[d] = k
        if first[-1] >= 0:
            error = self._error("empty subject id", int(rows[first[-1]]), "subject_id")
            problems.append(_Problem((1, first[-1], 0), error))
        key = keys[index]
        return self._check_grouped(
            key, np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1)), rows, problems
        )

    def _integer_keys(self, col: Any) -> tuple[np.ndarray, np.ndarray]:
        """Keys of an integer id column without nulls, and where its runs of one id start: ids are read once
        per run."""
        raw = col.to_numpy()
        starts = np.concatenate(([0], np.flatnonzero(raw[1:] != raw[:-1]) + 1))
        run_keys = []
        for subject in raw[starts].tolist():
            k = self.keys.get(subject)
            if k is None:
                k = self.keys[subject] = len(self.subjects)
                self.subjects.append(subject)
            run_keys.append(k)
        return np.repeat(np.array(run_keys, np.int64), np.diff(np.append(starts, len(raw)))), starts

    def _check_grouped(
        self, key: np.ndarray, starts: np.ndarray, rows: np.ndarray, problems: list[_Problem]
    ) -> np.ndarray:
        """`key`, with a problem if a subject comes back after others (`starts`: where each run begins)."""
        seen: set[int] = set()  # subjects that ended in this batch (self.done: in the batches before)
        current = int(self.carry[0].key[0]) if self.carry else None
        for start, k in zip(starts.tolist(), key[starts].tolist(), strict=True):
            if k == current or k < 0:
                continue
            if current is not None:
                seen.add(current)
            if k in seen or k in self.done:
                problems.append(_Problem((1, start, 0), self._again(k, int(rows[start]))))
                break
            current = k
        return key

    def _again(self, key: int, row: int) -> DataError:
        return self._error(appears_again(self.subjects[key], self.colmap["subject_id"]), row, "subject_id")

    def _codes(
        self, col: Any, rows: np.ndarray, problems: list[_Problem]
    ) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """(the batch's distinct code cells, their code ids (-1: bad, with a problem; or unused), each row's
        index into them (the last for a null cell)). A Parquet dictionary repeats across the batches of a row
        group: its code ids are kept, and only cells not looked at before are."""
        if pa.types.is_dictionary(col.type):
            last = self._last_codes
            if last is not None and col.dictionary.equals(last[0]):
                values, ids = last[1], last[2]
            else:
                values = [*col.dictionary.to_pylist(), None]
                ids = np.full(len(values), -1, np.int64)
                self._last_codes = (col.dictionary, values, ids)
            index = pc.fill_null(col.indices.cast(pa.int64()), len(values) - 1).to_numpy(zero_copy_only=False)
        else:
            values, index, _ = _distinct(col)
            values.append(None)
            index = np.where(index < 0, len(values) - 1, index)
            ids = np.full(len(values), -1, np.int64)
        missing = np.flatnonzero(ids[index] < 0)
        if len(missing):
            distinct, first = np.unique(index[missing], return_index=True)
            for d, at in zip(distinct.tolist(), missing[first].tolist(), strict=True):
                raw = values[d]
                i = self.codes.ids.get(raw, -1) if isinstance(raw, str) else -1
                try:
                    ids[d] = i if i >= 0 else self._add_code(raw, int(rows[at]))
                except DataError as e:
                    problems.append(_Problem((1, at, 1), e))
        if self.strict_codes:
            unknown = self.codes.flag("unknown")[ids[index]]
            if unknown.any():
                at = int(np.argmax(unknown))
                error = self._error(unknown_code(values[index[at]]), int(rows[at]), "code")
                problems.append(_Problem((1, at, 1), error))
        return values, ids, index

    def _add_code(self, raw: Any, row: int) -> int:
        canonical, unit, unknown = _check_code(raw, self.vocab, self.path, row, self.colmap["code"])
        stripped = raw.strip()
        flags = {
            "unknown": unknown,
            "static": canonical.upper().startswith(STATIC_PREFIXES),
            "birth": canonical in BIRTH_CODES,
            "timed": raw in self.timed_codes or raw.startswith(self._timed_prefixes),
            "wanted": stripped in BIRTH_CODES
            or self.wanted is None
            or bool(self.wanted(stripped, canonical)),
        }
        return self.codes.add(raw, stripped, canonical, unit, flags)

    def _times(
        self, col: Any, rows: np.ndarray, problems: list[_Problem], role: str, what: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """(has a time, microseconds since 1970) per row; problems for unreadable or out-of-range times.
        Timestamps with a time zone are UTC underneath (kept naive, as `parse_time` does)."""
        kind = col.type
        if pa.types.is_timestamp(kind):
            valid = ~_nulls(col)
            raw = pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
            factor = _UNIT_FACTOR[kind.unit]
            us = raw * factor if factor else raw // 1000
        elif pa.types.is_date32(kind):
            valid = ~_nulls(col)
            us = (
                pc.fill_null(col.cast(pa.int32()), 0).to_numpy(zero_copy_only=False).astype(np.int64) * DAY_US
            )
        else:
            return self._parsed_times(col, rows, problems, role, what)
        bad = valid & ((us < _MIN_US) | (us > _MAX_US))
        if bad.any():  # found with the batch, before any row, as `tables.iter_table_batches` does
            at = int(np.argmax(bad))
            error = self._error("time outside the years 1-9999 (not a usable date)", int(rows[at]), role)
            problems.append(_Problem((0, at, 0), error))
        return valid, np.where(valid, us, 0)

    def _parsed_times(
        self, col: Any, rows: np.ndarray, problems: list[_Problem], role: str, what: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Times from text (or another type): each distinct value parsed once (`parse_time`)."""
        values, index, first = _distinct(col)
        us = np.zeros(len(values) + 1, np.int64)
        valid = np.zeros(len(values) + 1, bool)
        for d, raw in enumerate(values):
            if first[d] < 0:
                continue
            cached = raw.__class__ is str and raw in self.parsed_times
            try:
                t = self.parsed_times[raw] if cached else parse_time(raw)
            except (ValueError, TypeError) as e:
                error = self._error(f"{what} ({e})", int(rows[first[d]]), role)
                problems.append(_Problem((1, first[d], 2 if role == "time" else 3), error))
                continue
            if raw.__class__ is str and not cached and len(self.parsed_times) < _MAX_CACHED_TIMES:
                self.parsed_times[raw] = t
            if t is not None:
                us[d], valid[d] = (t - _EPOCH) // _US, True
        return valid[index], us[index]

    # -------------------------------------------------------------------------------- rules and counts

    def _move_to_day_end(
        self,
        t: np.ndarray,
        timed: np.ndarray,
        end: np.ndarray,
        has_end: np.ndarray,
        birth: np.ndarray,
        timed_code: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`readers._TimelineReader._move_to_day_end` for every row at once."""
        applies = timed & ~birth
        midnight = applies & (t % DAY_US == 0)
        end_midnight = has_end & (end % DAY_US == 0)
        kept = applies & (midnight | end_midnight) & timed_code
        self.stats.kept_at_midnight += int((kept & midnight).sum())
        moved = midnight & ~kept
        self.stats.moved_to_day_end += int(moved.sum())
        t = np.where(moved, t + _TO_DAY_END_US, t)
        clamp = applies & ~kept & has_end
        end = np.where(clamp, np.maximum(np.where(end_midnight, end + _TO_DAY_END_US, end), t), end)
        return t, end

    def _tally(
        self,
        raw: list[Any],
        ids: np.ndarray,
        index: np.ndarray,
        positions: np.ndarray,
        rows: np.ndarray,
        what: str,
    ) -> None:
        """`readers._tally` for the rows at `positions` (their indices into `raw`: `index`) that count, in row
        order: untimed rows whose code is not a static one, or rows of unknown codes."""
        distinct, first, counts = np.unique(index, return_index=True, return_counts=True)
        untimed = what == "untimed"
        codes = self.codes
        static, unknown = codes.flag("static"), codes.flag("unknown")
        found = []
        for d, f, c in zip(distinct.tolist(), first.tolist(), counts.tolist(), strict=True):
            i = int(ids[d])
            if i >= 0 and ((not static[i]) if untimed else unknown[i]):
                found.append((int(positions[f]), d, c))
        counter, examples = (
            (self.stats.untimed_events, self.stats.untimed_examples)
            if untimed
            else (self.stats.unknown_codes, self.stats.unknown_examples)
        )
        for position, d, c in sorted(found):
            canonical = codes.canonical[int(ids[d])]
            _tally(counter, examples, canonical, raw[d], self.path, int(rows[position]))
            counter[canonical] += c - 1

    # -------------------------------------------------------------------------------- values

    def _values(self, col: Any, n: int, strings: _Strings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(has a number, the number, text id of a value that is not a number) per row (`readers._value`).
        float16/float32 values are the decimals they were written as (`tables._decimal_floats`, per distinct
        value)."""
        if col is None or pa.types.is_null(col.type) or pa.types.is_boolean(col.type):
            return np.zeros(n, bool), np.zeros(n), np.zeros(n, np.int64)
        kind = col.type
        if pa.types.is_float16(kind) or pa.types.is_float32(kind):
            enc = col.dictionary_encode()
            decimals = pc.cast(pc.cast(enc.dictionary, pa.string()), pa.float64()).to_numpy(
                zero_copy_only=False
            )
            index = pc.fill_null(enc.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
            f = np.append(decimals, np.nan)[index]
        elif pa.types.is_floating(kind) or pa.types.is_integer(kind):
            f = pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        else:
            return self._parsed_values(col, strings)
        has = np.isfinite(f)
        return has, np.where(has, f, 0.0), np.zeros(n, np.int64)

    def _parsed_values(self, col: Any, strings: _Strings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values of a text (or other) column, each distinct value read once."""
        values, index, first = _distinct(col)
        nums = np.zeros(len(values) + 1)
        has = np.zeros(len(values) + 1, bool)
        texts = np.zeros(len(values) + 1, np.int64)
        for d, raw in enumerate(values):
            if first[d] < 0:
                continue
            num, text = _value(raw)
            if num is not None:
                nums[d], has[d] = num, True
            texts[d] = strings.id(text)
        return has[index], nums[index], texts[index]

    def _texts(self, col: Any, from_value: np.ndarray, strings: _Strings) -> np.ndarray:
        """`readers._text_value`: a text_value cell, stripped, else the text found in the value column."""
        if col is None:
            return from_value
        values, index = self._labels(col, "text_value")
        ids = np.array([0 if v is None or v == "" else strings.id(str(v).strip()) for v in values] + [0])
        own = ids[index]
        return np.where(own != 0, own, from_value)

    def _units(self, col: Any, n: int, strings: _Strings) -> np.ndarray:
        """`readers._unit`: a unit cell, stripped (None when blank); an empty cell (-1) takes the code's unit."""
        if col is None:
            return np.full(n, -1, np.int64)
        values, index = self._labels(col, "unit")
        ids = [-1 if v is None or v == "" else strings.id(str(v).strip()) for v in values]
        return np.array([*ids, -1], np.int64)[index]

    def _tables(self, col: Any, n: int, strings: _Strings) -> np.ndarray:
        """An OMOP table name, or None (MIMIC's `table` column means nothing)."""
        if col is None:
            return np.zeros(n, np.int64)
        values, index, first = _distinct(col)
        ids = [
            strings.id(v) if f >= 0 and v in OMOP_TABLES else 0
            for v, f in zip(values, first[: len(values)], strict=True)
        ]
        return np.array([*ids, 0], np.int64)[index]

    def _labels(self, col: Any, role: str) -> tuple[list[Any], np.ndarray]:
        """(distinct values, each row's index, -1 for null) of a column whose every value is read (no
        errors: units, text values, table names); a Parquet dictionary seen in the batch before is not
        decoded again."""
        if not pa.types.is_dictionary(col.type):
            values, index, _ = _distinct(col)
            return values, index
        last = self._dictionaries.get(role)
        if last is not None and col.dictionary.equals(last[0]):
            values = last[1]
        else:
            values = col.dictionary.to_pylist()
            self._dictionaries[role] = (col.dictionary, values)
        return values, pc.fill_null(col.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------------------------------------- reading


def _distinct(col: Any) -> tuple[list[Any], np.ndarray, list[int]]:
    """(distinct values as Python objects, each row's index into them (-1 for a null), the position of each
    value's first row (-1 when no row has it: a Parquet dictionary may hold more), then that of the first
    null)."""
    enc = col if pa.types.is_dictionary(col.type) else col.dictionary_encode()
    index = pc.fill_null(enc.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
    values = enc.dictionary.to_pylist()
    first = np.full(len(values) + 1, -1, np.int64)
    positions = np.arange(len(index) - 1, -1, -1)
    first[index[::-1]] = positions  # the last write wins: each value's first row (nulls at -1: the end)
    return values, index, first.tolist()


def _nulls(col: Any) -> np.ndarray:
    return col.is_null().to_numpy(zero_copy_only=False)


def _file_batches(
    path: Path, names: list[str], sort: bool, batch_rows: int, dictionaries: list[str]
) -> Iterator[tuple[np.ndarray, list[Any]]]:
    """(row numbers, columns as pyarrow Arrays) batches of one file: streamed, or the whole file sorted by
    subject (stable: the row order within a subject is kept; rows keep their numbers)."""
    batches = iter_arrow_batches(path, names, batch_rows=batch_rows, dictionaries=dictionaries)
    if not sort:
        for start, arrays in batches:
            n = len(arrays[0])
            yield np.arange(start + 1, start + n + 1), arrays
        return
    parts: list[list[Any]] = [[] for _ in names]
    for _, arrays in batches:
        for acc, a in zip(parts, arrays, strict=True):
            acc.append(a.dictionary_decode() if pa.types.is_dictionary(a.type) else a)
    if not parts[0]:
        return
    columns = [pa.chunked_array(p).combine_chunks() for p in parts]
    keys = pa.array(
        [str(s) if s is not None else "" for s in columns[0].to_pylist()]
    )  # the row reader's order
    order = pc.sort_indices(keys)
    taken = [c.take(order) for c in columns]
    rows = order.to_numpy(zero_copy_only=False).astype(np.int64) + 1
    for start in range(0, len(rows), batch_rows):
        yield rows[start : start + batch_rows], [c.slice(start, batch_rows) for c in taken]


class _ReadAhead:
    """An iterator's next items made in a thread while the caller works on the current one (pyarrow decodes
    without holding the GIL, so reading overlaps the numpy work on the other core); its errors are raised
    here, in order. `close()` stops the thread."""

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int = 2):
        self.queue: queue.Queue[Any] = queue.Queue(depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(items,), daemon=True, name="ehrmind-read-ahead"
        )
        self.thread.start()

    def _run(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                while not self.stop.is_set():
                    try:
                        self.queue.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return
            self.queue.put((self._END, None))
        except BaseException as e:  # handed to the reading thread
            self.queue.put((self._END, e))

    def __iter__(self) -> _ReadAhead:
        return self

    def __next__(self) -> Any:
        item, error = self.queue.get()
        if error is not None:
            raise error
        if item is self._END:
            raise StopIteration
        return item

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass
            self.thread.join(timeout=0.05)


# ---------------------------------------------------------------------------------------------- events


class _Loader:
    """Makes the Event objects of rows [a, b) of a sorted chunk when a Timeline first needs them."""

    __slots__ = ("a", "b", "chunk", "codes")

    def __init__(self, chunk: _Chunk, codes: _Codes, a: int, b: int):
        self.chunk, self.codes, self.a, self.b = chunk, codes, a, b

    def __call__(self) -> tuple[list[Event], list[datetime]]:
        rows = self.chunk.take(slice(self.a, self.b)).sorted(self.codes)
        self.chunk = None  # type: ignore[assignment]
        return _events(rows, self.codes), _datetimes(rows.time[rows.timed], rows.timed[rows.timed])  # type: ignore[return-value]


def _events(chunk: _Chunk, codes: _Codes) -> list[Event]:
    """The chunk's rows as Events (the garbage collector paused: a million new objects that hold no cycles
    would otherwise set off its full passes over everything alive, for most of the time spent here)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _make_events(chunk, codes)
    finally:
        if paused:
            gc.enable()


def _make_events(chunk: _Chunk, codes: _Codes) -> list[Event]:
    s = chunk.strings
    code = chunk.code.tolist()
    nums = chunk.num.astype(object)
    nums[~chunk.has_num] = None
    units = [
        s[u] or None if u >= 0 else codes.unit[c] for u, c in zip(chunk.unit.tolist(), code, strict=True)
    ]
    return list(
        map(
            Event,
            _datetimes(chunk.time, chunk.timed),
            [codes.stripped[c] for c in code],
            [codes.canonical[c] for c in code],
            nums.tolist(),
            [s[i] or None for i in chunk.text.tolist()],
            units,
            _datetimes(chunk.end, chunk.has_end),
            [s[i] or None for i in chunk.table.tolist()],
        )
    )


def _view(
    subject: Any, rows: _Chunk, codes: _Codes, span: tuple[datetime | None, datetime | None]
) -> Timeline:
    """A Timeline of some of a subject's rows (sorted), with the whole record's span."""
    times: list[datetime] = _datetimes(rows.time[rows.timed], rows.timed[rows.timed])  # type: ignore[assignment]
    return Timeline(subject, _events(rows, codes), times, len(rows) - len(times), span=span)


def _datetimes(us: np.ndarray, present: np.ndarray) -> list[datetime | None]:
    out = us.astype("datetime64[us]").astype(object)
    out[~present] = None
    return out.tolist()  # type: ignore[no-any-return]


def _datetime(us: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))
