"""`ehrmind data`: write a task's canonical Examples as JSONL plus a manifest (source, hash, counts)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ehrmind import __version__
from ehrmind.io import atomic_write_json, atomic_write_jsonl, sha256_file
from ehrmind.registry import get_task
from ehrmind.types import Example

EXAMPLES = "examples.jsonl"
MANIFEST = "manifest.json"


def write_snapshot(
    task_name: str, source: str | Path, out_dir: str | Path, split: str | None = None
) -> dict[str, Any]:
    task = get_task(task_name)
    examples = task.load(source, split)
    out = Path(out_dir)
    n = atomic_write_jsonl(out / EXAMPLES, (ex.to_dict() for ex in examples))
    from ehrmind.eval.runner import examples_hash

    src = Path(source)
    manifest = {
        "task": task.name,
        "task_version": task.version,
        "source": str(source),
        "source_sha256": sha256_file(src) if src.is_file() else None,
        "split": split,
        "examples": EXAMPLES,
        "examples_sha256": examples_hash(examples),
        "n": n,
        "counts": {field: _counts(examples, field) for field in task.group_fields},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ehrmind_version": __version__,
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _counts(examples: list[Example], field: str) -> dict[str, int]:
    return dict(sorted(Counter(str(ex.metadata.get(field, "")) for ex in examples).items()))
