"""The EHRSHOT training data in one pass: labelled examples split by patient, and the SFT warm-up set.

`ehrmind ehrshot-train-data` (recipes/ehrshot/base.yaml names its folders):

- `train/` — the training split, the GRPO prompts (`rl.data`);
- `held_out/` — patients never trained on, for `ehrmind eval`;
- `warmup_pool/` — label-balanced rows of the training split (as many "yes" as "no", at most `per_label`
  each), the pool the warm-up rationales are made from;
- `warmup/rationales.jsonl` — with a generator (the backbone itself by rejection sampling, or a teacher
  endpoint), the verified rationales `ehrmind.train.rationales.run_rationales` keeps: the SFT set (`sft.data`).

Splits are by patient. The data's own split (MEDS `subject_splits.parquet`, EHRSHOT `person_id_map.csv`) is
used when present (train → train; held_out / test → held_out; tuning / val are left out of both); otherwise
a subject goes to held_out when a seeded hash of its id falls below `held_out_fraction` — the same subject
always lands in the same split for a seed, whatever the labeler.

Why a warm-up at all: the paper's code trains EHRSHOT by GRPO alone from the instruct model (it has SFT
scripts for MedCalc and trial matching only, `src/sft/`), and says nothing about one. ehrmind adds a small,
label-balanced, self-generated one so the model starts RL answering in the output contract and not always
"no" (positives are ~10% of EHRSHOT's disease tasks); `--set model=<backbone>` on `ehrmind rl` skips it and
is the paper's run. Patient records stay on the machine in `--self` mode, which matters under a data-use
agreement; a teacher endpoint must be one the agreement allows.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError, DataError
from ehrmind.snapshot import EXAMPLES, write_snapshot
from ehrmind.tasks.base import Task
from ehrmind.types import Example

log = logging.getLogger(__name__)

TRAIN, HELD_OUT, POOL, WARMUP = "train", "held_out", "warmup_pool", "warmup"
"""Folder names under the output; recipes/ehrshot/base.yaml names them (a test pins both)."""
SPLIT_OF = {"train": TRAIN, "held_out": HELD_OUT, "test": HELD_OUT}
"""The data's own split names → ours; others (MEDS tuning, EHRSHOT val) are in neither."""


def held_out_subject(subject: Any, fraction: float, seed: int) -> bool:
    """True when `subject` is held out: a seeded hash of its id, uniform in [0, 1), below `fraction`."""
    digest = hashlib.sha256(f"{seed}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_by_subject(
    examples: Sequence[Example], *, held_out_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[Example]]:
    """{"train": […], "held_out": […]}: the examples' own split when they carry one, else by subject hash."""
    if not 0 < held_out_fraction < 1:
        raise ConfigError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    out: dict[str, list[Example]] = {TRAIN: [], HELD_OUT: []}
    own = any("split" in ex.metadata for ex in examples)
    for ex in examples:
        if own:
            name = SPLIT_OF.get(str(ex.metadata.get("split")))
        else:
            held = held_out_subject(ex.metadata["subject_id"], held_out_fraction, seed)
            name = HELD_OUT if held else TRAIN
        if name is not None:
            out[name].append(ex)
    for name, rows in out.items():
        if not rows:
            raise DataError(
                f"the {name} split is empty ({len(examples)} examples); "
                + ("the data's own splits have none" if own else "change --held-out-fraction or --seed")
            )
    return out


def balanced_rows(examples: Sequence[Example], *, per_label: int, seed: int = 0) -> list[Example]:
    """As many "yes" as "no" rows (the rarer label's count, at most `per_label`), seeded; file order kept."""
    if per_label < 1:
        raise ConfigError(f"per_label must be >= 1, got {per_label}")
    by_label: dict[bool, list[Example]] = {True: [], False: []}
    for ex in examples:
        by_label[bool(ex.target["label"])].append(ex)
    n = min(per_label, *(len(rows) for rows in by_label.values()))
    if n == 0:
        missing = "yes" if not by_label[True] else "no"
        raise DataError(f"no {missing!r} label in the training split: a balanced warm-up set needs both")
    rng = random.Random(seed)
    keep = {ex.id for rows in by_label.values() for ex in rng.sample(rows, n)}
    return [ex for ex in examples if ex.id in keep]


def build_training_data(
    task: Task,
    source: str | Path,
    out_dir: str | Path,
    *,
    per_label: int = 150,
    held_out_fraction: float = 0.2,
    seed: int = 0,
    build_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Label the raw data once, split it by patient, and write train/, held_out/ and warmup_pool/;
    returns {"train": n, "held_out": n, "warmup_pool": n, "warmup_labels": {...}}."""
    examples = task.load(source) if Path(source).is_dir() and (Path(source) / EXAMPLES).is_file() else None
    if examples is None:
        from ehrmind.tasks.ehrshot.build import build_examples

        examples = build_examples(task.name, source, **(build_options or {}))
    splits = split_by_subject(examples, held_out_fraction=held_out_fraction, seed=seed)
    warm = balanced_rows(splits[TRAIN], per_label=per_label, seed=seed)
    out = Path(out_dir)
    how = {"per_label": per_label, "held_out_fraction": held_out_fraction, "seed": seed}
    settings = {**how, "build": {k: str(v) for k, v in (build_options or {}).items()}}
    for name, rows in ((TRAIN, splits[TRAIN]), (HELD_OUT, splits[HELD_OUT]), (POOL, warm)):
        write_snapshot(task, rows, source, out / name, split=name, **settings)
    labels = {"yes": sum(ex.target["label"] for ex in warm), "no": sum(not ex.target["label"] for ex in warm)}
    summary = {TRAIN: len(splits[TRAIN]), HELD_OUT: len(splits[HELD_OUT]), POOL: len(warm)}
    log.info("EHRSHOT training data: %s; warm-up labels %s", summary, labels)
    return {**summary, "warmup_labels": labels}


def make_rationales(
    task: Task,
    out_dir: str | Path,
    generator: Any,
    *,
    mode: str = "self",
    samples: int = 4,
    batch_size: int = 8,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Verified rationales for the pool in `out_dir/warmup_pool` into `out_dir/warmup` (resumable; one kept
    per example), with `run_rationales`; returns its summary. `task` carries the recipe's prompt options."""
    from ehrmind.train.rationales import run_rationales

    out = Path(out_dir)
    pool = task.load(out / POOL)
    summary = run_rationales(
        task, pool, generator, out / WARMUP, samples=samples, mode=mode, batch_size=batch_size, info=info
    )  # type: ignore[arg-type]
    if not summary.get("kept"):
        raise DataError(
            f"no rationale passed verification ({summary.get('attempts')} attempts, dropped "
            f"{summary.get('dropped_by_reason')}); raise --samples or use a teacher endpoint",
            file=out / WARMUP / "attempts.jsonl",
        )
    return summary
