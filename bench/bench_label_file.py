"""EHRSHOT examples from a large label file (issue #31: 20,000 rows took 391 s).

Writes a label file of N rows over the subjects of a MEDS source (N / subjects per subject, an hour apart),
then runs `ehrmind data --task ehrshot --set labels=…` once per tree given, interleaved round after round,
and prints each run's wall time, peak memory and the load at its start, then the median of the per-round
ratios against the first tree. A tree is a `src` folder (`PYTHONPATH`); compare HEAD with a worktree of an
older commit (`git worktree add /tmp/old <commit>`).

    .venv/bin/python bench/bench_label_file.py --source ../shared/data/ehr_samples/mimic_iv_demo_meds \\
        --rows 20000 --rounds 2 --tree src --tree /tmp/old/src
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


def write_labels(source: Path, rows: int, path: Path) -> None:
    """`rows` labels over the subjects of `source`, alternating true and false."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from ehrmind.tasks.ehrshot.readers import resolve_source
    from ehrmind.tasks.ehrshot.tables import iter_table_batches

    src = resolve_source(source)
    subjects: list[int] = []
    seen: set[int] = set()
    for file in src.files:
        for (ids,) in iter_table_batches(file, ["subject_id"]):
            for s in ids:
                if s not in seen:
                    seen.add(s)
                    subjects.append(s)
    base = datetime(2150, 1, 1)
    lines = ["subject_id,prediction_time,boolean_value"]
    lines += [
        f"{subjects[i % len(subjects)]},{(base + timedelta(hours=i)).isoformat()},{str(i % 2 == 0).lower()}"
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")


def run(tree: str, source: Path, labels: Path, out: Path) -> tuple[float, float, float]:
    """(seconds, peak GB, load at the start) of one `ehrmind data` in a child process."""
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve()), "HF_HUB_OFFLINE": "1"}
    question = "question=Will X after {prediction_time}?"
    args = [sys.executable, "-m", "ehrmind", "-q", "data", "--task", "ehrshot", "--source", str(source)]
    args += ["--set", f"labels={labels}", "--set", question, "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    return seconds, peak, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--tree", action="append", default=[], help="a src folder; the first is the reference"
    )
    args = parser.parse_args()
    trees = args.tree or ["src"]
    with tempfile.TemporaryDirectory() as tmp:
        labels = Path(tmp) / "labels.csv"
        write_labels(args.source, args.rows, labels)
        ratios: dict[str, list[float]] = {t: [] for t in trees[1:]}
        for r in range(1, args.rounds + 1):
            times = {}
            for tree in trees:
                seconds, peak, load = run(tree, args.source, labels, Path(tmp) / f"out-{r}-{len(times)}")
                times[tree] = seconds
                print(f"round {r} {tree}: {seconds:.1f} s, peak so far {peak:.2f} GB, load {load:.2f}")
            for tree in trees[1:]:
                ratios[tree].append(times[tree] / times[trees[0]])
        for tree, rs in ratios.items():
            print(f"{tree} / {trees[0]}: median of per-round ratios {statistics.median(rs):.2f}")


if __name__ == "__main__":
    main()
