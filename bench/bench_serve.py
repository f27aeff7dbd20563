"""Sampled evaluation against `ehrmind serve`: concurrency 1 vs. 8 (issue #26, item 5: ≥ 3×).

A tiny random-weight model (offline, `ehrmind.train.tiny`) is served by `ehrmind serve` in a subprocess on
127.0.0.1 (its defaults: `--max-batch 16 --batch-wait-ms 5`), and `ehrmind.eval.runner.run_eval` (what
`ehrmind eval --url` runs) evaluates synthetic MedCalc-format notes through `OpenAICompatGenerator`, as
`eval --url … --temperature 0.6 --samples 2` does: every request carries its example's seed and asks for
both samples (`n=2`). Modes, interleaved round by round after one warm-up round (A, B, B, A, A, B, …:
each mode first in every other round, so a trend in the machine's load favours neither):

- `openai c=1`: one request at a time;
- `openai c=8`: eight in flight, so the server batches the seeded requests of an eval batch;
- `hf` (with `--hf`): `HFGenerator` in this process, batches of 8 (the reference: no HTTP).

The speed-up is the median over rounds of (c=8 rate / c=1 rate). A random model rarely stops early, so
every completion has `--max-new-tokens` tokens and each round does the same work. The benchmark also checks
that the completions at c=1 and c=8 are the same (a seeded request samples alone as in a batch), that no
request was retried, and that the server wrote no traceback.

    .venv/bin/python bench/bench_serve.py [--rounds 5] [--examples 24] [--samples 2] [--temperature 0.6]
        [--size small] [--max-batch 16] [--threads 1] [--hf] [--json out.json]
    .venv/bin/python bench/bench_serve.py --temperature 0 --samples 1   # greedy, as before #26
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def start_server(
    model: str, log: Path, extra: list[str], threads: int | None
) -> tuple[subprocess.Popen, str]:
    """`ehrmind serve` on a free loopback port; (process, base URL) once it prints its URL. Its stderr goes
    to `log`."""
    first = ["--threads", str(threads)] if threads else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "ehrmind", *first, "serve", "--model", model, "--port", "0", "--name", "tiny"]
        + extra,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    found: list[str] = []

    def read() -> None:  # the URL line, then keep draining stdout
        for line in proc.stdout or []:
            if not found and " at http://" in line:
                found.append(line.split(" at ")[1].split()[0])

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not found and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not found:
        proc.kill()
        raise SystemExit(f"ehrmind serve did not start:\n{log.read_text()}")
    return proc, found[0]


def completions(out: Path) -> list[tuple[str, int, str]]:
    """(id, sample, completion) of a run folder's predictions, sorted."""
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return sorted((r["id"], r["sample"], r["completion"]) for r in rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--examples", type=int, default=24, help="notes per evaluation (3 batches of 8)")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--size", choices=("tiny", "small"), default="small", help="ehrmind.train.tiny size")
    parser.add_argument("--max-batch", type=int, default=None, help="the server's (default: its own)")
    parser.add_argument("--batch-wait-ms", type=float, default=None, help="the server's (default: its own)")
    parser.add_argument("--threads", type=int, default=None, help="the server's torch threads (ehrmind's)")
    parser.add_argument("--hf", action="store_true", help="also time HFGenerator in this process")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Serve the model, run the interleaved rounds; the results (rates per round and what was checked)."""
    from ehrmind.eval.runner import run_eval, run_info
    from ehrmind.generate.hf import GenerationSettings, HFGenerator
    from ehrmind.generate.openai_compat import OpenAICompatGenerator
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.registry import get_task
    from ehrmind.tasks.medcalc.sample_rows import make_rows
    from ehrmind.train.tiny import build_tiny_model

    settings = GenerationSettings(
        samples=args.samples, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=0
    )
    modes = ["openai c=1", "openai c=8", *(["hf"] if args.hf else [])]
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    extra = [
        *(["--max-batch", str(args.max_batch)] if args.max_batch is not None else []),
        *(["--batch-wait-ms", str(args.batch_wait_ms)] if args.batch_wait_ms is not None else []),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "notes.jsonl"
        atomic_write_jsonl(data, make_rows(args.examples, seed=5))
        task = get_task("medcalc")
        examples = task.load(data)[: args.examples]
        model = str(build_tiny_model(work / "model", size=args.size, seed=0))
        local = HFGenerator(model, settings) if args.hf else None
        server_log = work / "serve.log"
        proc, url = start_server(model, server_log, extra, args.threads)
        requests = {"sent": 0, "expected": 0}

        def rate(mode: str, out: Path) -> float:
            info = run_info(
                task,
                examples,
                "synthetic",
                model="tiny",
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
                seed=0,
            )
            if mode == "hf":
                gen: Any = local
            else:
                gen = OpenAICompatGenerator(url, "tiny", settings=settings, concurrency=int(mode[-1]))
            started = time.perf_counter()
            try:
                run_eval(
                    task, examples, gen, out, samples=args.samples, batch_size=8, info=info, progress=False
                )
            finally:
                if mode != "hf":
                    gen.close()
                    requests["sent"] += gen.requests_sent
                    requests["expected"] += len(examples)
            return len(examples) * args.samples / (time.perf_counter() - started)

        try:
            for mode in modes:  # warm-up: first calls, thread pools, connections
                rate(mode, work / f"warm-{mode}")
            rounds: list[dict[str, float]] = []
            same = True
            for r in range(args.rounds):
                order = modes if r % 2 == 0 else modes[::-1]
                rounds.append({mode: rate(mode, work / f"r{r}-{mode}") for mode in order})
                same &= completions(work / f"r{r}-openai c=1") == completions(work / f"r{r}-openai c=8")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        tracebacks = server_log.read_text().count("Traceback")

    median = {mode: statistics.median(r[mode] for r in rounds) for mode in modes}
    speedup = [r["openai c=8"] / r["openai c=1"] for r in rounds]
    return {
        "model_size": args.size,
        "examples": len(examples),
        "samples": args.samples,
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "server_options": extra,
        "server_threads": args.threads,
        "rounds": rounds,
        "completions_per_s_median": median,
        "speedup_c8_over_c1_per_round": speedup,
        "speedup_c8_over_c1_median": statistics.median(speedup),
        "same_completions_c1_c8": same,
        "requests_sent": requests["sent"],
        "requests_needed": requests["expected"],
        "server_tracebacks": tracebacks,
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def main() -> None:
    args = parse_args()
    results = measure(args)
    median, speedup = results["completions_per_s_median"], results["speedup_c8_over_c1_per_round"]
    print(
        f"{results['examples']} notes x {args.samples} samples, temperature {args.temperature}, "
        f"{args.max_new_tokens} new tokens each, {args.size} model, {args.rounds} rounds"
    )
    print(f"{'backend':<14}{'completions/s (median)':>24}")
    for mode, rate in median.items():
        print(f"{mode:<14}{rate:>24.2f}")
    print(
        f"speed-up c=8 / c=1, median of per-round ratios: {results['speedup_c8_over_c1_median']:.2f}x "
        f"(rounds: {', '.join(f'{s:.2f}' for s in speedup)})"
    )
    print(
        f"same completions at c=1 and c=8: {results['same_completions_c1_c8']}; requests "
        f"{results['requests_sent']} for {results['requests_needed']} needed; server tracebacks: "
        f"{results['server_tracebacks']}"
    )
    print(f"before: {results['load_before']}\nafter:  {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
