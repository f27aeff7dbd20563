"""Evaluation throughput (completions per second) against `ehrmind serve`: concurrency 1 vs. 8.

One process builds a tiny random-weight model (offline), serves it with `ehrmind.generate.server.make_server`
on 127.0.0.1 (dynamic micro-batching) and runs `ehrmind.eval.runner.run_eval` on synthetic MedCalc-format
notes three ways, interleaved round by round:

- `hf`: `HFGenerator` in the process, batches of 8 (the reference: no HTTP);
- `openai c=1`: `OpenAICompatGenerator` against the server, one request at a time;
- `openai c=8`: the same with `concurrency=8`, so the server batches each eval batch of 8.

Greedy decoding; a random model rarely stops early, so every completion has `--max-new-tokens` tokens and
each round does the same work. The speed-up is the median over rounds of (c=8 rate / c=1 rate).

    .venv/bin/python bench/bench_serve.py [--rounds 5] [--examples 32] [--size small] [--json out.json]
    .venv/bin/python bench/bench_serve.py --max-batch 1     # the server one request at a time (before #14)
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

MODES = ("hf", "openai c=1", "openai c=8")


def _eval_rate(task: Any, examples: list[Any], generator: Any, out: Path, max_new_tokens: int) -> float:
    """Completions per second of one `run_eval` (generation, verification, files) into a fresh folder."""
    from ehrmind.eval.runner import run_eval, run_info

    info = run_info(
        task, examples, "synthetic", model="tiny", temperature=0.0, max_new_tokens=max_new_tokens, seed=0
    )
    started = time.perf_counter()
    run_eval(task, examples, generator, out, batch_size=8, info=info, progress=False)
    return len(examples) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--examples", type=int, default=32, help="notes per evaluation (4 batches of 8)")
    parser.add_argument("--size", choices=("tiny", "small"), default="small", help="ehrmind.train.tiny size")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-wait-ms", type=float, default=None, help="the server's (default: its own)")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="the server's (1: one at a time, as before)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    from ehrmind.generate.hf import GenerationSettings, HFGenerator
    from ehrmind.generate.openai_compat import OpenAICompatGenerator
    from ehrmind.generate.server import make_server
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.registry import get_task
    from ehrmind.tasks.medcalc.sample_rows import make_rows
    from ehrmind.train.tiny import build_tiny_model

    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "notes.jsonl"
        atomic_write_jsonl(data, make_rows(args.examples, seed=5))
        task = get_task("medcalc")
        examples = task.load(data)[: args.examples]
        model = str(build_tiny_model(work / "model", size=args.size, seed=0))
        local = HFGenerator(model, settings)
        extra = {
            k: v
            for k, v in (("batch_wait_ms", args.batch_wait_ms), ("max_batch", args.max_batch))
            if v is not None
        }
        server = make_server(HFGenerator(model, settings), "127.0.0.1", 0, model_name="tiny", **extra)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"

        def rate(mode: str, out: Path) -> float:
            if mode == "hf":
                return _eval_rate(task, examples, local, out, args.max_new_tokens)
            gen = OpenAICompatGenerator(url, "tiny", settings=settings, concurrency=int(mode[-1]))
            try:
                return _eval_rate(task, examples, gen, out, args.max_new_tokens)
            finally:
                getattr(gen, "close", lambda: None)()

        try:
            for mode in MODES:  # warm-up: first calls, thread pools, connections
                rate(mode, work / f"warm-{mode}")
            server.backend.batch_sizes.clear()
            rounds: list[dict[str, float]] = []
            for r in range(args.rounds):  # interleaved: A, B, C, A, B, C, …
                rounds.append({mode: rate(mode, work / f"r{r}-{mode}") for mode in MODES})
            batches = dict(sorted(server.backend.batch_sizes.items()))
        finally:
            server.shutdown()
            server.server_close()

    median = {mode: statistics.median(r[mode] for r in rounds) for mode in MODES}
    speedup = [r["openai c=8"] / r["openai c=1"] for r in rounds]
    results = {
        "model_size": args.size,
        "examples": len(examples),
        "max_new_tokens": args.max_new_tokens,
        "rounds": rounds,
        "completions_per_s_median": median,
        "speedup_c8_over_c1_per_round": speedup,
        "speedup_c8_over_c1_median": statistics.median(speedup),
        "hf_over_c8_median": statistics.median(r["hf"] / r["openai c=8"] for r in rounds),
        "server_batch_sizes": batches,
        "cpu_count": os.cpu_count(),
        "load_average_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    print(
        f"{len(examples)} notes, {args.max_new_tokens} new tokens each, {args.size} model, {args.rounds} rounds"
    )
    print(f"{'backend':<14}{'completions/s (median)':>24}")
    for mode in MODES:
        print(f"{mode:<14}{median[mode]:>24.2f}")
    print(f"speed-up c=8 / c=1, median of per-round ratios: {results['speedup_c8_over_c1_median']:.2f}x")
    print(f"server batch sizes (requests per generate call: count): {batches}")
    print(results["load_average_after"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
