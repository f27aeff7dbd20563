"""Read CSV / Parquet tables in batches with pyarrow, never the whole file at once.

CSV cells are read as strings (the caller parses them and names the row when it cannot); a CSV whose
header has tabs is read as tab-separated (OMOP Athena exports such as CONCEPT.csv), without quoting.
`.csv.gz` and other compressed CSVs are decompressed on the fly.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ehrmind.errors import DataError

BATCH_ROWS = 65_536
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")


def table_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(f"unsupported file type; use .parquet, {', '.join(CSV_SUFFIXES)}", file=path)


def _csv_header(path: Path) -> tuple[list[str], str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
            line = fh.readline()
    except OSError as e:
        raise DataError(f"cannot read CSV ({e})", file=path) from None
    line = line.rstrip("\r\n").lstrip("\ufeff")
    if not line:
        raise DataError("file is empty", file=path)
    delimiter = "\t" if "\t" in line else ","
    return [c.strip().strip('"') for c in line.split(delimiter)], delimiter


def table_columns(path: Path) -> list[str]:
    """Column names, from the Parquet schema or the CSV header."""
    if not path.exists():
        raise DataError("file not found", file=path)
    if table_kind(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as e:  # pyarrow raises several types for a broken file
            raise DataError(f"cannot read Parquet ({e})", file=path) from None
    return _csv_header(path)[0]


def _to_list(col: Any, dedupe: bool) -> list[Any]:
    """A column as a Python list; with `dedupe`, equal values become one shared object (dictionary-decoded:
    much faster for timestamps, and codes repeated a million times take the memory of one)."""
    col = _decimal_floats(col)
    if not dedupe:
        return col.to_pylist()
    enc = col.dictionary_encode() if not hasattr(col, "dictionary") else col
    if hasattr(enc, "combine_chunks"):
        enc = enc.combine_chunks()
    values = enc.dictionary.to_pylist()
    return [None if i is None else values[i] for i in enc.indices.to_pylist()]


def _decimal_floats(col: Any) -> Any:
    """A float16/float32 column as float64 holding the decimal each value was written as: 8.4 stored in
    float32 is 8.3999996185…, which is below a reference range's 8.4 and would be flagged low (issue #31: the
    same data with its values stored as text, "8.4", gave other flags in 1,683 of 3,317 prompts). pyarrow's
    cast to text writes the shortest decimal that reads back as the same float32, so the values are exactly
    those of a text or float64 column."""
    import pyarrow as pa

    kind = col.type
    if not (pa.types.is_float16(kind) or pa.types.is_float32(kind)):
        return col
    import pyarrow.compute as pc

    return pc.cast(pc.cast(col, pa.string()), pa.float64())


def _first_out_of_range(col: Any) -> int:
    """Index of the first value of `col` that has no Python value (0 when it cannot be told)."""
    for i in range(len(col)):
        try:
            col[i].as_py()
        except (OverflowError, ValueError):
            return i
    return 0


def iter_table_batches(
    path: Path, columns: Sequence[str], *, batch_rows: int = BATCH_ROWS, dedupe: Sequence[str] = ()
) -> Iterator[tuple[list[Any], ...]]:
    """Yield the requested columns batch by batch, as Python lists (one per column, same length).
    Columns named in `dedupe` are dictionary-decoded (see `_to_list`)."""
    for start, arrays in iter_arrow_batches(path, columns, batch_rows=batch_rows):
        out = []
        for c, col in zip(columns, arrays, strict=True):
            try:
                out.append(_to_list(col, c in dedupe))
            except (OverflowError, ValueError):  # a timestamp past year 9999 has no Python datetime
                raise DataError(
                    "time outside the years 1-9999 (not a usable date)",
                    file=path,
                    row=start + _first_out_of_range(col) + 1,
                    field=c,
                ) from None
        yield tuple(out)


def iter_arrow_batches(
    path: Path, columns: Sequence[str], *, batch_rows: int = BATCH_ROWS, dictionaries: Sequence[str] = ()
) -> Iterator[tuple[int, list[Any]]]:
    """Yield (rows before this batch, the requested columns as pyarrow Arrays), at most `batch_rows` rows a
    batch. CSV columns are strings; Parquet columns keep their types, and the string columns named in
    `dictionaries` come as dictionary arrays (each distinct value decoded once)."""
    import pyarrow as pa

    if table_kind(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path, read_dictionary=[c for c in dictionaries if c in columns])
            start = 0
            for batch in pf.iter_batches(batch_size=batch_rows, columns=list(columns)):
                yield start, [batch.column(i) for i in range(len(columns))]
                start += batch.num_rows
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"cannot read Parquet ({e})", file=path) from None
        return

    import pyarrow.csv as pacsv

    header, delimiter = _csv_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"missing column(s): {', '.join(missing)}", file=path, row=1, field=missing[0])
    try:
        reader = pacsv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pacsv.ReadOptions(block_size=1 << 22),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=False if delimiter == "\t" else '"', newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                include_columns=list(columns),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        start = 0
        for batch in reader:
            cols = [batch.column(c) for c in columns]
            n = batch.num_rows
            for offset in range(0, n, batch_rows):
                yield start + offset, [col.slice(offset, batch_rows) for col in cols]
            start += n
    except pa.ArrowInvalid as e:
        # pyarrow's message quotes the offending line (patient data): keep only its first clause, and find
        # the row ourselves.
        reason = str(e).split(":", 2)
        short = ":".join(reason[:2]).strip() if len(reason) > 2 else str(e)[:120]
        raise DataError(f"cannot parse CSV ({short})", file=path, row=_bad_csv_row(path, delimiter)) from None


def _bad_csv_row(path: Path, delimiter: str) -> int | None:
    """The first data row (1-based) whose field count differs from the header's, if any."""
    import csv

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:  # type: ignore[operator]
        reader = csv.reader(
            fh, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        )
        width = len(next(reader, []))
        for i, fields in enumerate(reader, start=1):
            if len(fields) != width:
                return i
    return None
