"""Scale benchmark of `ehrmind data --task ehrshot` on N copies of the MIMIC-IV demo (issue #30, part 2).

For every size (×1, ×10, …; the datasets are written by bench/make_meds_scale.py into `--data-dir`, reused
when already there) and every labeler, one `ehrmind data --task ehrshot --source DIR --labeler L --set
max_tokens=256` runs in a child process. Each run records its wall seconds, events/s (the manifest's
`read.rows` over the wall seconds, start-up included), the child's own peak RSS (`os.wait4`), the examples
written, seconds per 1,000 examples (the whole run over the examples: read, label and serialize) and the
1-minute load average at its start. Runs are interleaved: every round runs all size × labeler pairs, the
order rotated by one each round; the table gives medians over rounds. With several `--tree` (src folders,
e.g. HEAD and a worktree of an older commit) each pair runs once per tree in turn, and the ratios against
the first tree are medians of per-round ratios.

`--phases` runs, instead, a child per size × labeler × tree × reader that reads every timeline twice in one
process (ehrmind's `iter_timelines` with the builder's settings): once reading and labeling as `ehrmind data`
does before writing prompts (the issue's goal: read + label events/s; the columnar reader hands the labeler
only the events it wants), once making every event a Python object (what the row reader always does, and the
columnar reader does for subjects with prompts). `--readers columnar,rows` compares the two readers of one
tree; a tree from before the columnar reader reads rows. Rounds rotate the (tree, reader) order; medians
follow the per-run rows (it calls `ExampleBuilder` internals, so it follows src/).

`--aces PATH/aces-cli` (es-aces, installed in a venv of its own: `python3 -m venv /tmp/aces-venv &&
/tmp/aces-venv/bin/pip install es-aces`) adds ACES extracting `lab_hyperkalemia`'s cohort (ACES_CONFIG) from
the same shards, as one more interleaved entry per size, and reports how its labels agree with ehrmind's
(prediction times matched one minute apart: ehrmind predicts one minute before the result, ACES at it). The
datasets are then written with MEDS's `numeric_value` column, which ACES needs and ehrmind also reads.

    .venv/bin/python bench/bench_ehrshot_scale.py --sizes 1,10 --rounds 3 --aces /tmp/aces-venv/bin/aces-cli
    .venv/bin/python bench/bench_ehrshot_scale.py --phases --sizes 1,10,50 --rounds 3 --readers columnar,rows
    .venv/bin/python bench/bench_ehrshot_scale.py --sizes 50 --rounds 1 --labeler new_hypertension  # 46M events

Results and the 2026-12-07 baseline: docs/BENCHMARKS.md, "Reading MEDS at scale".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from make_meds_scale import write_scaled  # noqa: E402

DEMO = ROOT.parent / "shared/data/ehr_samples/mimic_iv_demo_meds/mimic_iv_demo_meds_events.parquet"
LABELERS = ("new_hypertension", "lab_hyperkalemia", "guo_readmission")
GOAL = 5e6
ACES = "aces:lab_hyperkalemia"
ACES_CONFIG = """\
# ehrmind's lab_hyperkalemia on MIMIC-IV MEDS: one prediction per potassium result with a value (labevents
# 50971, blood gas 50822), not at the subject's first event; positive when the result is > 5.5 mmol/L (mEq/L).
predicates:
  potassium:
    code: {regex: "^LAB//(50971|50822)//"}
    value_min: -1000000.0
    value_min_inclusive: true
  hyperkalemia:
    code: {regex: "^LAB//(50971|50822)//"}
    value_min: 5.5
    value_min_inclusive: false
trigger: potassium
windows:
  input:
    start: null
    end: trigger
    start_inclusive: true
    end_inclusive: false
    has:
      _ANY_EVENT: (1, None)
  target:
    start: trigger
    end: start + 1s
    start_inclusive: true
    end_inclusive: false
    label: hyperkalemia
    index_timestamp: start
"""
Labels = dict[tuple[int, datetime], bool]
PHASES = """\
import inspect, json, sys, time
from collections import Counter
from ehrmind.tasks.ehrshot.build import ExampleBuilder
from ehrmind.tasks.ehrshot.readers import ReadStats, iter_timelines

b = ExampleBuilder("ehrshot", sys.argv[1], labeler=sys.argv[2], max_tokens=256)
columnar = "wanted" in inspect.signature(iter_timelines).parameters  # a tree before the columnar reader: rows
def timelines(stats):
    extra = {"reader": sys.argv[3], "wanted": b.labeler.wanted} if columnar else {}
    return iter_timelines(b.source, vocab=b.vocab, stats=stats, day_end=b.move_to_day_end,
                          timed_codes=b.timed_codes, **extra)
first = timelines(ReadStats())
next(first)  # one-time loads before the clock starts (start-up, whatever the data's size): the CMS ICD
first.close()  # tables and their category prefixes, and the ICD-10-CM package's table (2.2 s, read when a
for vocab in ("ICD10CM", "ICD9CM", "ICD9Proc", "ICD10PCS"):  # code is missing from the CMS tables)
    b.vocab.is_known(vocab + "/ZZZ999")
stats = ReadStats()
t0 = time.perf_counter()
labels = sum(len(b.labeler.label(getattr(tl, "for_labels", tl), Counter())) for tl in timelines(stats))
t1 = time.perf_counter()
events = sum(len(tl.events) for tl in timelines(ReadStats())) if sys.argv[4] == "1" else 0
t2 = time.perf_counter() if events else float("nan")
print(json.dumps({"rows": stats.rows, "read_label_s": t1 - t0, "read_events_s": t2 - t1, "labels": labels,
                  "events": events, "reader": sys.argv[3] if columnar else "rows"}))
"""


@dataclass
class Run:
    round: int
    tree: str
    size: int
    labeler: str
    seconds: float
    rows: int
    examples: int
    peak_mb: float
    load: float

    @property
    def events_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def s_per_1000(self) -> float:
        return self.seconds / self.examples * 1000 if self.examples else float("nan")


def dataset(data_dir: Path, source: Path, size: int, numeric_value: bool) -> Path:
    """The ×size dataset under data_dir, written unless a complete one is already there."""
    out = data_dir / f"meds_x{size}{'_nv' if numeric_value else ''}"
    meta = out / "metadata" / "dataset.json"
    if meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("factor") == size and info.get("source") == str(source):
            return out
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    info = write_scaled(source, size, out, numeric_value=numeric_value)
    print(f"wrote ×{size}: {info['rows']:,} rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return out


def child(args: list[str], env: dict[str, str], what: str, stdout: Any = None) -> tuple[float, float]:
    """(wall seconds, the child's own peak RSS in MB) of one command, its output into `stdout` (a file; by
    default dropped); SystemExit with its stderr on failure."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, env=env, stdout=stdout or subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not a maximum over all children
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"error: {what} failed (exit {proc.returncode}): {tail}")
    return seconds, usage.ru_maxrss / 1024


def run_once(
    tree: str, source: Path, labeler: str, out: Path
) -> tuple[float, int, int, float, float, Labels]:
    """(seconds, rows read, examples, peak RSS in MB, load at the start, labels) of one `ehrmind data`;
    labels keyed by (subject, prediction time + 1 minute), only for lab_hyperkalemia (compared with ACES)."""
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str((ROOT / tree).resolve()), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "ehrmind", "-q", "data", "--task", "ehrshot", "--source", str(source)]
    args += ["--labeler", labeler, "--out", str(out), "--set", "max_tokens=256"]
    seconds, peak = child(args, env, f"ehrmind data on {source} with {labeler}")
    manifest = json.loads((out / "manifest.json").read_text())
    labels: Labels = {}
    if labeler == "lab_hyperkalemia":
        with open(out / "examples.jsonl", encoding="utf-8") as fh:
            for line in fh:
                meta = json.loads(line)["metadata"]
                t = datetime.fromisoformat(meta["prediction_time"]) + timedelta(minutes=1)
                labels[(int(meta["subject_id"]), t)] = bool(meta["label"])
    shutil.rmtree(out, ignore_errors=True)
    return seconds, manifest["read"]["rows"], manifest["n"], peak, load, labels


def run_aces(aces: str, source: Path, out: Path) -> tuple[float, int, int, float, float, Labels]:
    """The same for ACES extracting lab_hyperkalemia's cohort from every shard (one Hydra multirun)."""
    load = os.getloadavg()[0]
    out.mkdir(parents=True)
    (out / "lab_hyperkalemia.yaml").write_text(ACES_CONFIG)
    shards = sorted(p.stem for p in (source / "data").glob("*.parquet"))
    args = [aces, "-m", f"cohort_dir={out}", "cohort_name=lab_hyperkalemia", "data=sharded"]
    args += ["data.standard=meds", f"data.root={source / 'data'}", f"data.shard={','.join(shards)}"]
    seconds, peak = child(args, dict(os.environ), f"ACES on {source}")
    labels: Labels = {}
    for shard in shards:
        table = pq.read_table(out / "lab_hyperkalemia" / f"{shard}.parquet")
        for sid, t, value in zip(
            *(table.column(c).to_pylist() for c in ("subject_id", "prediction_time", "boolean_value")),
            strict=True,
        ):
            labels[(sid, t)] = bool(value)
    rows = json.loads((source / "metadata" / "dataset.json").read_text())["rows"]
    shutil.rmtree(out, ignore_errors=True)
    return seconds, rows, len(labels), peak, load, labels


def run_phases(
    tree: str, source: Path, labeler: str, reader: str, every_event: bool = True
) -> dict[str, float]:
    """In one child process: seconds to read and label every timeline (what `ehrmind data` does before the
    prompts: the labeler reads only the events it wants), and to read every timeline with all its events made
    as Python objects (what the row reader always does); the child's peak RSS."""
    env = {**os.environ, "PYTHONPATH": str((ROOT / tree).resolve()), "HF_HUB_OFFLINE": "1"}
    load = os.getloadavg()[0]
    args = [sys.executable, "-c", PHASES, str(source), labeler, reader, "1" if every_event else "0"]
    with tempfile.TemporaryFile("w+") as out:
        _, peak = child(args, env, f"phases on {source} with {labeler}", stdout=out)
        out.seek(0)
        result = json.loads(out.read().strip().splitlines()[-1])
    return {**result, "load": load, "peak_mb": peak}


def phases(args: argparse.Namespace, sizes: list[int], labelers: list[str], trees: list[str]) -> None:
    """Interleaved rounds of (size, labeler, tree, reader) children; a row per run, then medians."""
    print(
        "| size | events | labeler | tree | reader | read + label s | read + label events/s | every event s "
        "| every event events/s | labels | peak MB | load |"
    )
    print("|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    runs: dict[tuple[int, str, str, str], list[dict[str, float]]] = {}
    pairs = [(t, r) for t in trees for r in args.readers]
    for i in range(args.rounds):
        for size in sizes:
            for labeler in labelers:
                for tree, reader in pairs[i % len(pairs) :] + pairs[: i % len(pairs)]:
                    data = dataset(args.data_dir, args.source, size, False)
                    p = run_phases(tree, data, labeler, reader, not args.no_every_event)
                    runs.setdefault((size, labeler, tree, str(p["reader"])), []).append(p)
                    print(
                        f"| ×{size} | {p['rows']:,} | {labeler} | {tree} | {p['reader']} | {p['read_label_s']:.2f} "
                        f"| {p['rows'] / p['read_label_s'] / 1e6:.2f}M | {p['read_events_s']:.2f} "
                        f"| {p['rows'] / p['read_events_s'] / 1e6:.2f}M | {p['labels']:,} | {p['peak_mb']:.0f} "
                        f"| {p['load']:.2f} |",
                        flush=True,
                    )
    print("\nmedians over rounds:\n")
    print(
        "| size | events | labeler | tree | reader | read + label events/s | every event events/s | peak MB |"
    )
    print("|---|---:|---|---|---|---:|---:|---:|")
    for (size, labeler, tree, reader), ps in runs.items():
        rows = ps[0]["rows"]
        rl = statistics.median(rows / p["read_label_s"] for p in ps)
        ev = statistics.median(rows / p["read_events_s"] for p in ps)
        peak = statistics.median(p["peak_mb"] for p in ps)
        print(
            f"| ×{size} | {rows:,} | {labeler} | {tree} | {reader} | {rl / 1e6:.2f}M | {ev / 1e6:.2f}M | {peak:.0f} |"
        )


def agreement(ours: Labels, aces: Labels) -> str:
    both = ours.keys() & aces.keys()
    same = sum(ours[k] == aces[k] for k in both)
    union = len(ours.keys() | aces.keys())
    return (
        f"ehrmind {len(ours):,} labels ({sum(ours.values()):,} positive), ACES {len(aces):,} "
        f"({sum(aces.values()):,} positive); same prediction time: {len(both):,}, of which same label "
        f"{same:,} ({same / len(both):.2%}); only ehrmind {len(ours.keys() - aces.keys()):,}, only ACES "
        f"{len(aces.keys() - ours.keys()):,}; agreement over the union {same / union:.2%}"
        if both
        else f"no common prediction times (ehrmind {len(ours):,}, ACES {len(aces):,})"
    )


def table(runs: list[Run], trees: list[str]) -> str:
    lines = [
        "| size | events | labeler | tree | rounds | seconds | events/s | peak MB | examples "
        "| s / 1,000 examples | load at starts |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    keys = sorted({(r.size, r.labeler, r.tree) for r in runs}, key=lambda k: (k[0], k[1], trees.index(k[2])))
    for size, labeler, tree in keys:
        rs = [r for r in runs if (r.size, r.labeler, r.tree) == (size, labeler, tree)]
        secs = statistics.median(r.seconds for r in rs)
        loads = [r.load for r in rs]
        lines.append(
            f"| ×{size} | {rs[0].rows:,} | {labeler} | {tree} | {len(rs)} | {secs:.1f} "
            f"| {statistics.median(r.events_per_s for r in rs) / 1e6:.3f}M "
            f"| {max(r.peak_mb for r in rs):.0f} | {rs[0].examples:,} "
            f"| {statistics.median(r.s_per_1000 for r in rs):.1f} | {min(loads):.2f}–{max(loads):.2f} |"
        )
    return "\n".join(lines)


def marginal(runs: list[Run], tree: str) -> list[str]:
    """Per labeler, events/s between the smallest and the largest size (start-up cost cancels out)."""
    out = []
    sizes = sorted({r.size for r in runs})
    if len(sizes) < 2:
        return out
    lo, hi = sizes[0], sizes[-1]
    for labeler in sorted({r.labeler for r in runs}):
        a = [r for r in runs if (r.size, r.labeler, r.tree) == (lo, labeler, tree)]
        b = [r for r in runs if (r.size, r.labeler, r.tree) == (hi, labeler, tree)]
        if a and b:
            ds = statistics.median(r.seconds for r in b) - statistics.median(r.seconds for r in a)
            dr = b[0].rows - a[0].rows
            scale = statistics.median(r.seconds for r in b) / statistics.median(r.seconds for r in a)
            out.append(
                f"{labeler} ({tree}): ×{lo} → ×{hi}: {dr / ds / 1e6:.3f}M events/s marginal, "
                f"time ×{scale:.2f} for events ×{b[0].rows / a[0].rows:.1f}, "
                f"{GOAL * ds / dr:.0f}× short of {GOAL / 1e6:.0f}M events/s"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEMO, help="the MEDS file to copy (the demo)")
    parser.add_argument("--sizes", default="1,10", help="copies, comma-separated (default 1,10; 50 ≈ 46M)")
    parser.add_argument("--labeler", action="append", default=[], help=f"default: {', '.join(LABELERS)}")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--tree", action="append", default=[], help="a src folder; the first is the reference"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "ehrmind_meds_scale")
    parser.add_argument("--json", type=Path, help="also write every run here")
    parser.add_argument("--aces", help="an aces-cli executable: also time ACES and compare its labels")
    parser.add_argument("--phases", action="store_true", help="time reading, and reading + labeling, apart")
    parser.add_argument(
        "--no-every-event",
        action="store_true",
        help="with --phases: skip the pass making every event an object",
    )
    parser.add_argument(
        "--readers",
        type=lambda v: v.split(","),
        default=["columnar"],
        help="with --phases: ehrmind readers to compare, e.g. columnar,rows (a tree without them reads rows)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    labelers = args.labeler or list(LABELERS)
    if args.aces and "lab_hyperkalemia" not in labelers:
        labelers.append("lab_hyperkalemia")
    trees = args.tree or ["src"]
    if args.phases:
        phases(args, sizes, labelers, trees)
        return
    sources = {size: dataset(args.data_dir, args.source, size, bool(args.aces)) for size in sizes}
    pairs = [(size, labeler) for size in sizes for labeler in [*labelers, *([ACES] if args.aces else [])]]
    runs: list[Run] = []
    labels: dict[tuple[str, int], Labels] = {}
    print(f"cores {os.cpu_count()}, load before {os.getloadavg()[0]:.2f}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(1, args.rounds + 1):
            shift = (r - 1) % len(pairs)
            for size, labeler in pairs[shift:] + pairs[:shift]:
                for tree in (trees if r % 2 else trees[::-1]) if labeler != ACES else ["aces"]:
                    out = Path(tmp) / f"out-{r}-{size}-{labeler}-{tree.replace('/', '_')}"
                    if labeler == ACES:
                        result = run_aces(args.aces, sources[size], out)
                    else:
                        result = run_once(tree, sources[size], labeler, out)
                    seconds, rows, n, peak, load, got = result
                    if got:
                        labels[(tree, size)] = got
                    run = Run(r, tree, size, labeler, seconds, rows, n, peak, load)
                    runs.append(run)
                    print(
                        f"round {r} ×{size} {labeler} {tree}: {seconds:.1f} s, {rows:,} rows, "
                        f"{run.events_per_s / 1e6:.3f}M events/s, {n} examples, peak {peak:.0f} MB, "
                        f"load {load:.2f}",
                        file=sys.stderr,
                    )
    print(f"load after {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(table(runs, [*trees, "aces"]))
    for tree in [*trees, *(["aces"] if args.aces else [])]:
        for line in marginal(runs, tree):
            print(f"- {line}")
    for tree in trees[1:]:
        for size, labeler in [p for p in pairs if p[1] != ACES]:
            mine = {r.round: r.seconds for r in runs if (r.size, r.labeler, r.tree) == (size, labeler, tree)}
            ref = {
                r.round: r.seconds for r in runs if (r.size, r.labeler, r.tree) == (size, labeler, trees[0])
            }
            ratios = [mine[k] / ref[k] for k in sorted(mine) if k in ref]
            print(
                f"- ×{size} {labeler}: {tree} / {trees[0]} time, median of per-round ratios "
                f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)})"
            )
    if args.aces:
        for size in sizes:
            for tree in trees:
                ours, theirs = labels.get((tree, size), {}), labels.get(("aces", size), {})
                print(f"- ×{size} lab_hyperkalemia, {tree} vs ACES: {agreement(ours, theirs)}")
    if args.json:
        rows = [{**asdict(r), "events_per_s": r.events_per_s, "s_per_1000": r.s_per_1000} for r in runs]
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
