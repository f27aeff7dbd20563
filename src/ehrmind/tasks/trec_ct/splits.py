"""Patient-disjoint, seeded train/val/test splits, and optional class balancing of the training pairs.

Every pair of one patient (topic) goes to the same split, so no test patient is seen in training (the
research code this replaces re-indexed before splitting, and most of its "transductive" test pairs were
also training pairs). Trials may appear in several splits with different patients, as in deployment.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.tasks.trec_ct.sources import natural_key
from ehrmind.types import Example

SPLITS = ("train", "val", "test")


def _n_held_out(n: int, frac: float) -> int:
    k = round(n * frac)
    return max(k, 1) if frac > 0 and n >= 3 else k


def split_by_patient(
    examples: Sequence[Example], *, seed: int = 0, val_frac: float = 0.1, test_frac: float = 0.2
) -> dict[str, list[Example]]:
    """Assign whole patients to train/val/test, within each cohort (so each split has every cohort in about
    the same proportion). Patients are shuffled with `random.Random(seed)` from their natural order, so the
    same data and seed always give the same split. A cohort with fewer than 3 patients goes to train."""
    for name, frac in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 <= frac < 1:
            raise ConfigError(f"{name} must be a number in [0, 1), got {frac!r}")
    if val_frac + test_frac >= 1:
        raise ConfigError(
            f"val_frac + test_frac must be below 1 (got {val_frac} + {test_frac}); lower one of them"
        )
    rng = random.Random(seed)
    by_cohort: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        by_cohort[str(ex.metadata.get("cohort", ""))].add(str(ex.metadata["patient_id"]))
    assignment: dict[str, str] = {}
    for cohort in sorted(by_cohort):
        patients = sorted(by_cohort[cohort], key=natural_key)
        rng.shuffle(patients)
        n = len(patients)
        n_test = _n_held_out(n, test_frac) if n >= 3 else 0
        n_val = min(_n_held_out(n, val_frac) if n >= 3 else 0, max(0, n - n_test - 1))
        for i, pid in enumerate(patients):
            assignment[pid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in examples:
        out[assignment[str(ex.metadata["patient_id"])]].append(ex)
    return out


def balance_classes(examples: Sequence[Example], *, seed: int = 0) -> tuple[list[Example], dict[str, Any]]:
    """Down-sample each label to the size of the rarest label present, separately per label scale (TREC,
    SIGIR); order is kept. Returns the kept examples and the counts before and after."""
    rng = random.Random(f"balance:{seed}")
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[(str(ex.target.get("scale", "trec")), int(ex.target["label"]))].append(i)
    keep: set[int] = set()
    for scale in sorted({s for s, _ in groups}):
        sizes = {label: len(idx) for (s, label), idx in groups.items() if s == scale}
        target = min(sizes.values())
        for label in sorted(sizes):
            idx = groups[(scale, label)]
            keep.update(idx if len(idx) <= target else rng.sample(idx, target))
    kept = [ex for i, ex in enumerate(examples) if i in keep]

    def counts(rows: Sequence[Example]) -> dict[str, int]:
        return dict(sorted(Counter(str(ex.target["label_name"]) for ex in rows).items()))

    return kept, {"before": counts(examples), "after": counts(kept), "dropped": len(examples) - len(kept)}
