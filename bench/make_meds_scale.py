"""Write a MEDS dataset of N copies of a source's subjects, for scale benchmarks (issue #30).

Copy k (0 … N-1) of every subject gets `subject_id = original + k * offset` (`offset`: the power of ten above
the largest id, so ids never collide and copies sort after each other) and every time moved `k * shift_days`
days later (whole days: an event at midnight stays at midnight; static rows without a time stay null). All
other columns, and the schema, are kept as they are. The output is `OUT/data/shard_NNNNN.parquet`, sorted by
subject_id then time (null times first), `--shard-subjects` subjects per shard (default: one copy per shard),
plus `OUT/metadata/dataset.json` naming the source and the parameters. `--numeric-value` writes the demo's
`value` column under MEDS's name `numeric_value` (ACES, and strict MEDS readers, need it; ehrmind reads both).

Columnar and streaming: the source is read once and sorted (pyarrow), then each copy is computed and written
shard by shard, so memory holds one copy of the source (not N); ×50 of the MIMIC-IV demo (46M rows) writes
with the memory of ×1.

    .venv/bin/python bench/make_meds_scale.py \\
        --source ../shared/data/ehr_samples/mimic_iv_demo_meds/mimic_iv_demo_meds_events.parquet \\
        --factor 10 --out /tmp/meds_x10
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ehrmind.errors import DataError, UserError  # noqa: E402
from ehrmind.io import atomic_path, atomic_write_json  # noqa: E402

ROW_GROUP = 1 << 20


def read_source(path: Path, *, numeric_value: bool = False) -> pa.Table:
    """The source events sorted by subject_id, then time (null times first); DataError when unusable."""
    if not path.is_file():
        raise DataError("file not found", file=path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"not a readable Parquet file ({e})", file=path) from e
    for name in ("subject_id", "time"):
        if name not in table.column_names:
            raise DataError(f"no {name!r} column (has {', '.join(table.column_names)})", file=path)
    if not pa.types.is_integer(table.schema.field("subject_id").type):
        raise DataError(f"subject_id is {table.schema.field('subject_id').type}, not an integer", file=path)
    if not pa.types.is_timestamp(table.schema.field("time").type):
        raise DataError(f"time is {table.schema.field('time').type}, not a timestamp", file=path)
    if table.num_rows == 0:
        raise DataError("no rows", file=path)
    if numeric_value and "value" in table.column_names:
        if "numeric_value" in table.column_names:
            raise DataError("has both 'value' and 'numeric_value' columns", file=path)
        table = table.rename_columns(["numeric_value" if c == "value" else c for c in table.column_names])
    if table.column("subject_id").null_count:
        raise DataError("subject_id has null values", file=path)
    if pc.min(table.column("subject_id")).as_py() < 0:
        raise DataError("subject_id has negative values", file=path)
    keys = [("subject_id", "ascending", "at_start"), ("time", "ascending", "at_start")]
    order = pc.sort_indices(table, sort_keys=keys)
    return table.take(order).combine_chunks()


def id_offset(table: pa.Table) -> int:
    """The smallest power of ten above the largest subject id."""
    top = pc.max(table.column("subject_id")).as_py()
    return 10 ** len(str(top))


def copy_of(table: pa.Table, k: int, offset: int, shift_days: int) -> pa.Table:
    """Copy k: subject ids + k * offset, times + k * shift_days days (nulls stay null)."""
    if k == 0:
        return table
    ids = table.column("subject_id")
    new_ids = pc.add_checked(ids, pa.scalar(k * offset, ids.type))
    times = table.column("time")
    shift = pa.scalar(timedelta(days=k * shift_days), pa.duration(times.type.unit))
    new_times = pc.add_checked(times, shift).cast(times.type)
    table = table.set_column(table.column_names.index("subject_id"), "subject_id", new_ids)
    return table.set_column(table.column_names.index("time"), "time", new_times)


def subject_bounds(table: pa.Table) -> list[int]:
    """Row offsets where each subject starts in the sorted table, plus the row count at the end."""
    ids = table.column("subject_id").combine_chunks()
    if len(ids) == 1:
        return [0, 1]
    change = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    starts = pc.add(pc.indices_nonzero(change), 1).to_pylist()
    return [0, *starts, len(ids)]


def slices(
    table: pa.Table, factor: int, offset: int, shift_days: int, per_shard: int | None
) -> Iterator[list[pa.Table]]:
    """The shards, each a list of table slices: one copy per shard, or `per_shard` subjects per shard."""
    bounds = subject_bounds(table)
    n_subjects = len(bounds) - 1
    pending: list[pa.Table] = []
    count = 0
    for k in range(factor):
        copy = copy_of(table, k, offset, shift_days)
        if per_shard is None:
            yield [copy]
            continue
        first = 0
        while first < n_subjects:
            take = min(per_shard - count, n_subjects - first)
            start, end = bounds[first], bounds[first + take]
            pending.append(copy.slice(start, end - start))
            count += take
            first += take
            if count == per_shard:
                yield pending
                pending, count = [], 0
    if pending:
        yield pending


def write_scaled(
    source: Path,
    factor: int,
    out: Path,
    *,
    shift_days: int = 7,
    shard_subjects: int | None = None,
    numeric_value: bool = False,
) -> dict[str, object]:
    """Write `factor` copies of `source` under `out`; returns what metadata/dataset.json records."""
    if factor < 1:
        raise DataError(f"factor must be at least 1, got {factor}")
    if shard_subjects is not None and shard_subjects < 1:
        raise DataError(f"shard-subjects must be at least 1, got {shard_subjects}")
    data = out / "data"
    if data.exists() and any(data.iterdir()):
        raise DataError("already holds data/ files; choose an empty folder", file=out)
    table = read_source(source, numeric_value=numeric_value)
    offset = id_offset(table)
    data.mkdir(parents=True, exist_ok=True)
    n_shards = 0
    rows = 0
    for n_shards, parts in enumerate(slices(table, factor, offset, shift_days, shard_subjects), 1):
        path = data / f"shard_{n_shards - 1:05d}.parquet"
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, table.schema) as writer:
            for part in parts:
                writer.write_table(part, row_group_size=ROW_GROUP)
                rows += part.num_rows
    info: dict[str, object] = {
        "dataset_name": f"{source.stem} x{factor}",
        "source": str(source),
        "factor": factor,
        "subject_id_offset": offset,
        "shift_days": shift_days,
        "shard_subjects": shard_subjects,
        "numeric_value": numeric_value,
        "shards": n_shards,
        "rows": rows,
        "subjects": (len(subject_bounds(table)) - 1) * factor,
        "schema": {f.name: str(f.type) for f in table.schema},
    }
    (out / "metadata").mkdir(exist_ok=True)
    atomic_write_json(out / "metadata" / "dataset.json", info)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a MEDS events Parquet file")
    parser.add_argument("--factor", type=int, required=True, help="copies of every subject")
    parser.add_argument("--out", type=Path, required=True, help="output folder (data/, metadata/)")
    parser.add_argument("--shard-subjects", type=int, default=None, help="subjects per shard")
    parser.add_argument("--shift-days", type=int, default=7, help="days between copies (default 7)")
    parser.add_argument("--numeric-value", action="store_true", help="rename `value` to `numeric_value`")
    args = parser.parse_args(argv)
    try:
        info = write_scaled(
            args.source,
            args.factor,
            args.out,
            shift_days=args.shift_days,
            shard_subjects=args.shard_subjects,
            numeric_value=args.numeric_value,
        )
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {info['rows']:,} rows, {info['subjects']:,} subjects, {info['shards']} shards to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
