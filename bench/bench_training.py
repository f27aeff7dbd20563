"""Training overhead benchmark: GRPO step time through `ehrmind rl` vs. plain TRL, SFT step time,
and (with --demo) the demo's wall time and peak memory.

Both GRPO runs use the same tiny model, prompts, seed and TRL config. The plain-TRL run gets a reward
function that returns the value ehrmind's verifier gives a random model (-2: no output format), so both
runs generate identical completions and the difference is ehrmind's own cost (data preparation is outside
the timed steps; verification and reward plumbing are inside).

The GRPO comparison is interleaved, so that load from other processes on a shared machine falls on both
sides alike: each of --rounds rounds trains a fresh ehrmind run and a fresh plain-TRL run of --steps steps,
alternating which goes first (ehrmind first in round 1, plain first in round 2, ...). A run's step time is
the median over its steps after the first (warm-up) one; a round's ratio is ehrmind / plain, and the
headline is the median of the rounds' ratios. Every run records the 1-minute load average at its start,
and every round records whether both runs logged the same per-step completion lengths and rewards
(evidence that they did identical work). The SFT step time comes from one run.

    .venv/bin/python bench/bench_training.py [--steps 12] [--rounds 5] [--threads N] [--demo] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CPU = {"bf16": False, "fp16": False, "use_cpu": True, "gradient_checkpointing": False, "report_to": "none"}
SEED = 0
RANDOM_MODEL_REWARD = -2.0  # ehrmind's verifier on a completion without the output format
EHRMIND, PLAIN = "ehrmind", "plain_trl"


def _step_times(history: list[dict]) -> list[float]:
    return [h["step_time"] for h in history if "step_time" in h][1:]  # the first step warms up


def _logged(history: list[dict], key: str) -> list[float]:
    return [h[key] for h in history if key in h]


def machine() -> dict[str, Any]:
    from ehrmind.runtime import cpu_model

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),  # /proc/cpuinfo's model name
        "platform_processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
    }


def _grpo_trl(steps: int) -> dict[str, Any]:
    return {
        **CPU,
        "learning_rate": 1e-4,
        "max_steps": steps,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 64,
        "temperature": 1.0,
        "logging_steps": 1,
        "save_strategy": "no",
    }


def _write_rl_recipe(path: Path, model: Path, data: Path, output_dir: Path, trl: dict[str, Any]) -> Path:
    recipe = {
        "stage": "rl",
        "task": "medcalc",
        "data": str(data),
        "model": str(model),
        "output_dir": str(output_dir),
        "seed": SEED,
        "trl": trl,
    }
    path.write_text(json.dumps(recipe))
    return path


def _build_ehrmind(recipe_path: Path) -> Any:
    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.rl import build_rl_trainer

    trainer, _ = build_rl_trainer(load_recipe(recipe_path, stage="rl"))
    return trainer


def _constant_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    return [RANDOM_MODEL_REWARD] * len(completions)


def _build_plain(model: Path, rows: list[dict], output_dir: Path, trl: dict[str, Any]) -> Any:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    return GRPOTrainer(
        model=str(model),
        reward_funcs=[_constant_reward],
        args=GRPOConfig(output_dir=str(output_dir), seed=SEED, **trl),
        train_dataset=datasets.Dataset.from_list(rows),
    )


def _timed_run(build: Callable[[], Any]) -> dict[str, Any]:
    """Build a fresh trainer and train it; the trainer is dropped before the next run starts."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    trainer = build()
    trainer.train()
    history = trainer.state.log_history
    times = _step_times(history)
    run = {
        "load_avg_1m_at_start": load,
        "wall_s": time.perf_counter() - started,
        "step_s_median": statistics.median(times),
        "step_s": times,
        "rewards": _logged(history, "reward"),
        "completion_mean_lengths": _logged(history, "completions/mean_length"),
    }
    del trainer
    gc.collect()
    return run


def _round(index: int, runners: dict[str, Callable[[int], dict[str, Any]]]) -> dict[str, Any]:
    order = [EHRMIND, PLAIN] if index % 2 == 0 else [PLAIN, EHRMIND]
    runs = {name: runners[name](index) for name in order}
    e, p = runs[EHRMIND], runs[PLAIN]
    return {
        "round": index + 1,
        "order": order,
        "step_s_ehrmind": e["step_s_median"],
        "step_s_plain_trl": p["step_s_median"],
        "ratio": e["step_s_median"] / p["step_s_median"],
        "same_completion_lengths": e["completion_mean_lengths"] == p["completion_mean_lengths"],
        "same_rewards": e["rewards"] == p["rewards"],
        "runs": runs,
    }


def bench_grpo(work: Path, model: Path, data: Path, steps: int, rounds: int) -> dict[str, Any]:
    trl = _grpo_trl(steps)
    # The prompts exactly as ehrmind prepares them (building this trainer also does the one-off imports
    # and loads, so that neither side of round 1 pays for them).
    setup = _build_ehrmind(_write_rl_recipe(work / "rl_setup.yaml", model, data, work / "rl_setup", trl))
    rows = setup.train_dataset.to_list()
    del setup
    gc.collect()

    def ehrmind(i: int) -> dict[str, Any]:
        recipe = _write_rl_recipe(work / f"rl_{i}.yaml", model, data, work / f"ehrmind_rl_{i}", trl)
        return _timed_run(lambda: _build_ehrmind(recipe))

    def plain(i: int) -> dict[str, Any]:
        return _timed_run(lambda: _build_plain(model, rows, work / f"plain_rl_{i}", trl))

    per_round = []
    for i in range(rounds):
        per_round.append(_round(i, {EHRMIND: ehrmind, PLAIN: plain}))
        r = per_round[-1]
        print(
            f"round {r['round']} ({' then '.join(r['order'])}): ehrmind {r['step_s_ehrmind']:.4f}s, "
            f"plain {r['step_s_plain_trl']:.4f}s, ratio {r['ratio']:.3f}",
            file=sys.stderr,
            flush=True,
        )
    return _grpo_summary(per_round, steps)


def _grpo_summary(per_round: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    ehrmind_rewards = {x for r in per_round for x in r["runs"][EHRMIND]["rewards"]}
    return {
        "grpo_rounds": len(per_round),
        "grpo_steps_per_run": steps,
        "grpo_steps_timed_per_run": steps - 1,
        "grpo_ratio_median": statistics.median(r["ratio"] for r in per_round),
        "grpo_ratios": [r["ratio"] for r in per_round],
        "grpo_step_s_ehrmind_median": statistics.median(r["step_s_ehrmind"] for r in per_round),
        "grpo_step_s_plain_trl_median": statistics.median(r["step_s_plain_trl"] for r in per_round),
        "grpo_identical_work": all(r["same_completion_lengths"] and r["same_rewards"] for r in per_round),
        "grpo_ehrmind_rewards_seen": sorted(ehrmind_rewards),
        "grpo_per_round": per_round,
    }


def bench_sft(work: Path, model: Path, data: Path, steps: int) -> dict[str, Any]:
    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.sft import build_sft_trainer

    trl = {
        **CPU,
        "learning_rate": 1e-3,
        "max_steps": steps,
        "per_device_train_batch_size": 8,
        "max_length": 768,
        "logging_steps": 1,
        "save_strategy": "no",
    }
    path = work / "sft.yaml"
    path.write_text(
        json.dumps(
            {
                "stage": "sft",
                "task": "medcalc",
                "data": str(data),
                "model": str(model),
                "output_dir": str(work / "sft"),
                "trl": trl,
            }
        )
    )
    trainer, _ = build_sft_trainer(load_recipe(path, stage="sft"))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    trainer.train()
    return {
        "sft_step_s": (time.perf_counter() - started) / steps,
        "sft_batch": 8,
        "sft_load_avg_1m_at_start": load,
    }


def bench_demo(work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ehrmind", "demo", "--out", str(work / "demo")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"demo_wall_s": time.perf_counter() - started, "demo_peak_rss_mib": peak_kib / 1024}


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"{results['date']}  {results['cpu_model']}  ({results['cpu_count']} CPUs, "
        f"{results['torch_threads']} torch threads)",
        "round  order                ehrmind s  plain s   ratio   load@start (e/p)  same work",
    ]
    for r in results["grpo_per_round"]:
        loads = (
            f"{r['runs'][EHRMIND]['load_avg_1m_at_start']:.2f}/{r['runs'][PLAIN]['load_avg_1m_at_start']:.2f}"
        )
        same = r["same_completion_lengths"] and r["same_rewards"]
        lines.append(
            f"{r['round']:>5}  {' -> '.join(r['order']):<20} {r['step_s_ehrmind']:>9.4f}  "
            f"{r['step_s_plain_trl']:>7.4f}  {r['ratio']:>6.3f}  {loads:>16}  {same}"
        )
    lines += [
        f"GRPO ratio ehrmind/plain, median of rounds: {results['grpo_ratio_median']:.3f}",
        f"GRPO step s, medians: ehrmind {results['grpo_step_s_ehrmind_median']:.4f}, "
        f"plain {results['grpo_step_s_plain_trl_median']:.4f}",
        f"SFT step s: {results['sft_step_s']:.4f} (batch {results['sft_batch']})",
    ]
    if "demo_wall_s" in results:
        lines.append(f"demo: {results['demo_wall_s']:.1f}s, peak RSS {results['demo_peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="GRPO and SFT steps per run (>= 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved ehrmind/plain GRPO rounds")
    parser.add_argument("--demo", action="store_true", help="also time the whole demo (several minutes)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.steps < 2 or args.rounds < 1:
        parser.error("expected --steps >= 2 (the first step is not timed) and --rounds >= 1")

    if args.threads is not None:
        from ehrmind.runtime import set_threads

        set_threads(args.threads)
    import torch

    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows
    from ehrmind.train.tiny import build_tiny_model

    results: dict[str, Any] = {"command": sys.argv, **machine(), "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "train.jsonl"
        atomic_write_jsonl(data, make_rows(64, seed=5))
        model = build_tiny_model(work / "model", size="tiny", seed=0)
        results.update(bench_grpo(work, model, data, args.steps, args.rounds))
        results.update(bench_sft(work, model, data, args.steps))
        if args.demo:
            results.update(bench_demo(work))
    text = json.dumps(results, indent=2)
    print(text)
    print(summary(results))
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
