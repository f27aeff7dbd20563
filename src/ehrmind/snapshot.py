"""Canonical Example snapshots: `examples.jsonl` plus a manifest (source, hashes, counts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind import __version__
from ehrmind.errors import ConfigError
from ehrmind.io import atomic_write_json, atomic_write_jsonl, sha256_file, sha256_rows
from ehrmind.types import Example

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

EXAMPLES = "examples.jsonl"
MANIFEST = "manifest.json"


def examples_hash(examples: Sequence[Example]) -> str:
    """Content hash of Examples, independent of the file format they came from."""
    return sha256_rows(ex.to_dict() for ex in examples)


def write_snapshot(
    task: Task,
    examples: Sequence[Example],
    source: str | Path,
    out_dir: str | Path,
    *,
    files: dict[str, Sequence[Example]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write `examples` (or several named files, e.g. train/val/test) and `manifest.json` to `out_dir`."""
    unknown = [
        k for k, v in extra.items() if not isinstance(v, (str, int, float, bool, type(None), list, dict))
    ]
    if unknown:
        raise ConfigError(f"unsupported option value for {', '.join(unknown)}")
    out = Path(out_dir)
    files = files or {EXAMPLES: examples}
    written = {}
    for name, rows in files.items():
        atomic_write_jsonl(out / name, (ex.to_dict() for ex in rows))
        written[name] = file_entry(task, rows)
    manifest = manifest_head(task, source, written, extra)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def file_entry(task: Task, rows: Sequence[Example]) -> dict[str, Any]:
    """A snapshot file's entry in the manifest: its size, hash and counts by each of the task's groups."""
    return {
        "n": len(rows),
        "sha256": examples_hash(rows),
        "counts": {field: _counts(rows, field) for field in task.groups.by},
    }


def manifest_head(
    task: Task, source: str | Path, written: dict[str, dict[str, Any]], options: dict[str, Any]
) -> dict[str, Any]:
    """What every snapshot manifest starts with: task and version, the source and its hash, the files, the
    options it was built with, when and by which ehrmind."""
    src = Path(source)
    return {
        "task": task.name,
        "task_version": task.version,
        "source": str(source),
        "source_sha256": sha256_file(src) if src.is_file() else None,
        "n": sum(f["n"] for f in written.values()),
        "files": written,
        "options": options,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ehrmind_version": __version__,
    }


def _counts(examples: Sequence[Example], field: str) -> dict[str, int]:
    return dict(sorted(Counter(str(ex.metadata.get(field, "")) for ex in examples).items()))
