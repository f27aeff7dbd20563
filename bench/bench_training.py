"""Training overhead benchmark: GRPO step time through `ehrmind rl` vs. plain TRL, SFT step time,
and (with --demo) the demo's wall time and peak memory.

Both GRPO runs use the same tiny model, prompts, seed and TRL config. The plain-TRL run gets reward
functions that return the same values ehrmind's verifier gives a random model (-2: no output format), so
both runs generate identical completions and the difference is ehrmind's own cost (data preparation is
outside the timed steps; verification and reward plumbing are inside).

    .venv/bin/python bench/bench_training.py [--steps 12] [--demo] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CPU = {"bf16": False, "fp16": False, "use_cpu": True, "gradient_checkpointing": False, "report_to": "none"}


def _step_times(history: list[dict]) -> list[float]:
    return [h["step_time"] for h in history if "step_time" in h][1:]  # the first step warms up


def bench_grpo(work: Path, model: Path, data: Path, steps: int) -> dict:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.rl import build_rl_trainer

    trl = {
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
    recipe_path = work / "rl.yaml"
    recipe_path.write_text(
        json.dumps(
            {
                "stage": "rl",
                "task": "medcalc",
                "data": str(data),
                "model": str(model),
                "output_dir": str(work / "ehrmind_rl"),
                "trl": trl,
            }
        )
    )
    recipe = load_recipe(recipe_path, stage="rl")
    trainer, _ = build_rl_trainer(recipe)
    trainer.train()
    ehrmind_times = _step_times(trainer.state.log_history)

    rows = trainer.train_dataset.to_list()

    def constant_reward(completions, **kwargs):
        return [-2.0] * len(completions)

    plain = GRPOTrainer(
        model=str(model),
        reward_funcs=[constant_reward],
        args=GRPOConfig(output_dir=str(work / "plain_rl"), seed=0, **trl),
        train_dataset=datasets.Dataset.from_list(rows),
    )
    plain.train()
    plain_times = _step_times(plain.state.log_history)
    e, p = statistics.median(ehrmind_times), statistics.median(plain_times)
    return {
        "grpo_step_s_ehrmind": e,
        "grpo_step_s_plain_trl": p,
        "ratio": e / p,
        "steps_timed": len(plain_times),
    }


def bench_sft(work: Path, model: Path, data: Path, steps: int) -> dict:
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
    started = time.perf_counter()
    trainer.train()
    return {"sft_step_s": (time.perf_counter() - started) / steps, "sft_batch": 8}


def bench_demo(work: Path) -> dict:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ehrmind", "demo", "--out", str(work / "demo")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"demo_wall_s": time.perf_counter() - started, "demo_peak_rss_mib": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--demo", action="store_true", help="also time the whole demo (several minutes)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows
    from ehrmind.train.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "train.jsonl"
        atomic_write_jsonl(data, make_rows(64, seed=5))
        model = build_tiny_model(work / "model", size="tiny", seed=0)
        results = {
            "cpu_count": os.cpu_count(),
            **bench_grpo(work, model, data, args.steps),
            **bench_sft(work, model, data, args.steps),
        }
        if args.demo:
            results.update(bench_demo(work))
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
