"""Verification time on hostile 1 MB completions (issue #16: "`ehrmind score` verifies a 1 MB completion of
any shape in under one second on one core").

Each shape of `tests/test_hostile_text.py` is verified against each task's example kinds (MedCalc decimal,
integer, date, gestational age; TREC CT; EHRSHOT), through `Task.verify` and the benchmark's own extraction
(the analyses' row fields, `row_fields`), which is what `ehrmind score` does per row; `Task.verify` alone is
reported beside it (the README's "a 1 MB completion verifies in under 0.25 s"). The shapes are timed
interleaved, round after round, and the median of the rounds is reported per (shape, case), so a burst of load on the shared machine
moves one round, not one shape.

    .venv/bin/python bench/bench_verify.py [--rounds 5] [--out bench/verify.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from ehrmind import get_task
    from ehrmind.tasks.analysis import row_fields
    from test_hostile_text import CASES, SHAPES

    times: dict[tuple[str, str], list[float]] = {}
    verify_times: dict[tuple[str, str], list[float]] = {}
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for shape, text in SHAPES.items():
            for task_name, example in CASES:
                task = get_task(task_name)
                started = time.perf_counter()
                task.verify(example, text)
                verified = time.perf_counter()
                row_fields(task, example, text)
                key = (shape, f"{task_name}/{example.id}")
                verify_times.setdefault(key, []).append(verified - started)
                times.setdefault(key, []).append(time.perf_counter() - started)
    medians = {k: statistics.median(v) for k, v in times.items()}
    verify_medians = {k: statistics.median(v) for k, v in verify_times.items()}
    worst = max(medians, key=medians.__getitem__)
    by_shape = {s: max(v for (sh, _), v in medians.items() if sh == s) for s in SHAPES}
    verify_by_shape = {s: max(v for (sh, _), v in verify_medians.items() if sh == s) for s in SHAPES}
    print(f"{'shape':<24} {'Task.verify (s)':>15} {'+ extraction (s)':>16}   (slowest case, median)")
    for shape, t in sorted(by_shape.items(), key=lambda kv: -kv[1]):
        print(f"{shape:<24} {verify_by_shape[shape]:>15.3f} {t:>16.3f}")
    families = sorted({c.split("/")[0] for _, c in medians})
    for family in families:
        v = max((t, k) for k, t in verify_medians.items() if k[1].startswith(family + "/"))
        print(f"{family}: slowest Task.verify {v[0]:.3f} s ({v[1][0]})")
    print(f"worst: {worst[0]} on {worst[1]}: {medians[worst]:.3f} s (median of {args.rounds} rounds)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.out:
        result = {
            "rounds": args.rounds,
            "median_seconds": {f"{s} | {c}": round(t, 4) for (s, c), t in medians.items()},
            "verify_median_seconds": {f"{s} | {c}": round(t, 4) for (s, c), t in verify_medians.items()},
            "worst": {"shape": worst[0], "case": worst[1], "seconds": round(medians[worst], 4)},
            "load_average": os.getloadavg()[0],
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
