"""Throughput of a real pretrained model on this machine: SmolLM2-135M-Instruct (`make real-model`), fp32.

What the real-model demo's budget rests on (docs/REAL_MODEL.md), each measured in interleaved rounds
(A, B, A, B …; the median of per-round ratios) because the machine is shared:

- generation: prefill milliseconds per prompt token and decoding tokens/s at batch 8 and 32 (plain
  transformers `generate` on the demo's FeverPAIN prompts, a fixed number of new tokens), with 1 and 2 torch
  threads;
- SFT: seconds per optimizer step of 8 worked examples through `ehrmind sft`'s trainer, full fine-tuning vs.
  LoRA (r 16, all linear layers);
- GRPO: seconds per step through `ehrmind rl`'s trainer with the real-model recipe (4 prompts × 8 completions,
  up to 160 tokens), from `--rl-model` (default: the base model, whose completions run to the limit).

    .venv/bin/python bench/bench_real_model.py [--model models/smollm2-135m-instruct] [--rounds 3]
        [--skip gen,sft,grpo] [--out bench/real_model.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def feverpain(work: Path, n: int):
    from ehrmind.programs.experiment import synthetic_split
    from ehrmind.recipes import PRETRAINED
    from ehrmind.train.recipe import load_recipe, recipe_task

    task = recipe_task(load_recipe(PRETRAINED, stage="sft"))
    return task, *synthetic_split(task, work, "notes", (33,), n, 7, max_distractors=0, reasoning="compact")


def bench_generation(model: str, task, examples, rounds: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ehrmind.generate.chat import render_prompt

    tok = AutoTokenizer.from_pretrained(model)
    tok.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    texts = [render_prompt(tok, task.render(ex)) for ex in examples]
    new = 64
    out: dict = {"new_tokens": new, "prompt_tokens_mean": None, "rows": []}
    for batch in (8, 32):
        enc = tok(texts[:batch], return_tensors="pt", padding=True, add_special_tokens=False)
        out["prompt_tokens_mean"] = float(enc["attention_mask"].sum(1).float().mean())
        per = {1: [], 2: []}
        for _ in range(rounds):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                with torch.inference_mode():
                    t = time.perf_counter()
                    lm(**enc)
                    prefill = time.perf_counter() - t
                    t = time.perf_counter()
                    lm.generate(
                        **enc,
                        max_new_tokens=new,
                        min_new_tokens=new,
                        do_sample=False,
                        pad_token_id=tok.pad_token_id,
                    )
                    total = time.perf_counter() - t
                decode = max(total - prefill, 1e-9)
                per[threads].append({
                    "prefill_ms_per_token": 1000 * prefill / int(enc["attention_mask"].sum()),
                    "decode_tokens_per_s": batch * new / decode,
                })  # fmt: skip
        for threads in (1, 2):
            out["rows"].append({
                "batch": batch,
                "threads": threads,
                "prefill_ms_per_token": statistics.median(r["prefill_ms_per_token"] for r in per[threads]),
                "decode_tokens_per_s": statistics.median(r["decode_tokens_per_s"] for r in per[threads]),
            })  # fmt: skip
        ratios = [
            a["decode_tokens_per_s"] / b["decode_tokens_per_s"] for a, b in zip(per[2], per[1], strict=True)
        ]
        out[f"decode_2_vs_1_threads_batch{batch}"] = statistics.median(ratios)
    torch.set_num_threads(2)
    return out


class _StepTimer:
    """A TrainerCallback collecting seconds per optimizer step (the first, warm-up step dropped)."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                outer.t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                outer.times.append(time.perf_counter() - outer.t)

        self.times: list[float] = []
        self.callback = Callback()

    def median(self) -> float:
        return statistics.median(self.times[1:] or self.times)


def _train(stage: str, model: str, data: Path, out: Path, sets: list[str], steps: int) -> float:
    from ehrmind.recipes import PRETRAINED
    from ehrmind.train.recipe import load_recipe

    recipe = load_recipe(
        PRETRAINED,
        [f"model={model}", f"data={data}", f"output_dir={out}", f"trl.max_steps={steps}", "trl.save_strategy='no'",
         "trl.logging_steps=1", *sets],
        stage=stage,
    )  # fmt: skip
    if stage == "sft":
        from ehrmind.train.sft import build_sft_trainer as build
    else:
        from ehrmind.train.rl import build_rl_trainer as build
    trainer, _ = build(recipe)
    timer = _StepTimer()
    trainer.add_callback(timer.callback)
    trainer.train()
    return timer.median()


def bench_sft(model: str, data: Path, work: Path, rounds: int, steps: int) -> dict:
    per: dict[str, list[float]] = {"full": [], "lora": []}
    for r in range(rounds):
        for kind in ("full", "lora"):
            sets = ["lora.enabled=true", "lora.r=16", "lora.alpha=32"] if kind == "lora" else []
            per[kind].append(_train("sft", model, data, work / f"sft-{kind}-{r}", sets, steps))
    ratios = [lo / fu for lo, fu in zip(per["lora"], per["full"], strict=True)]
    return {
        "examples_per_step": 8,
        "seconds_per_step": {k: statistics.median(v) for k, v in per.items()},
        "rounds": per,
        "lora_vs_full": statistics.median(ratios),
    }


def bench_grpo(model: str, data: Path, work: Path, steps: int) -> dict:
    t = _train("rl", model, data, work / "grpo", [], steps)
    return {"completions_per_step": 32, "max_completion_length": 160, "seconds_per_step": t, "model": model}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/smollm2-135m-instruct")
    ap.add_argument("--rl-model", default=None, help="GRPO starts here (default: --model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sft-steps", type=int, default=4)
    ap.add_argument("--grpo-steps", type=int, default=3)
    ap.add_argument("--skip", default="")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if not (Path(a.model) / "config.json").is_file():
        sys.exit(f"{a.model} not found: build it with `make real-model`")
    from ehrmind.runtime import cpu_facts

    skip = set(filter(None, a.skip.split(",")))
    result: dict = {"model": a.model, "machine": cpu_facts()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        task, data, examples = feverpain(work, 64)
        parts = {
            "generation": lambda: bench_generation(a.model, task, examples, a.rounds),
            "sft": lambda: bench_sft(a.model, data, work, a.rounds, a.sft_steps),
            "grpo": lambda: bench_grpo(a.rl_model or a.model, data, work, a.grpo_steps),
        }
        for name, run in parts.items():
            if name in skip or name[:3] in skip:
                continue
            result[name] = run()
            result["machine_after"] = cpu_facts()
            text = json.dumps(result, indent=2)
            print(text, flush=True)
            if a.out:  # after each part, so a later failure keeps what was measured
                a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
