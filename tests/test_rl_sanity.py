"""GRPO sanity: through `ehrmind rl`, a tiny model learns something trivially learnable, and the RL plumbing
has none of the classic defects — rollout prompts that differ from evaluation prompts, generation that does
not stop at EOS, silent truncation, zero advantages where a group's rewards differ.

The task: the prompt names a signal colour ("Case 17: the signal is red.") and the answer is its code (red →
1, green → 2). The SFT warm-up gives the right code in 35% of its rows and a wrong code (3) in the rest, so
the warmed model knows the answer format and prefers the wrong answer: greedy decoding is always wrong while
some samples are right, so GRPO groups have reward variance. GRPO must then raise both the mean reward and
the greedy held-out accuracy within a few dozen steps — the smallest case of what RL is for: sharpening what
sampling already finds. (The tiny model learns a preferred answer, not the colour lookup, in this budget;
the plumbing checks below are what make the test strict.)
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field
from typer.testing import CliRunner

from ehrmind import register_task
from ehrmind.cli import app
from ehrmind.contract import Contract, Wording
from ehrmind.io import atomic_write_jsonl
from ehrmind.tasks.base import PromptMode, Task, TaskOptions
from ehrmind.types import Example

runner = CliRunner()
CPU = {"bf16": False, "fp16": False, "use_cpu": True, "gradient_checkpointing": False, "report_to": "none"}
CODES = {"red": 1, "green": 2}
WRONG = 3  # the warm-up's wrong answer, the same for both colours
RIGHT = 0.35  # the share of warm-up rows with the right code
MAX_COMPLETION = 16


class SignalOptions(TaskOptions):
    mode: PromptMode = Field("direct", description="Answer only.")
    system_prompt: str | None = Field(
        'Answer as <answer>{"answer": CODE}</answer>.', description="The prompt this test was calibrated on."
    )


@register_task("signal_code")
class SignalCodeTask(Task):
    """The answer is the code of the signal colour; rows are {"id", "case", "colour", "sft_code"[, "sft"]}
    (`sft_code`: the warm-up's target, right or wrong; a row marked `sft` has it as its target)."""

    Options = SignalOptions
    contract = Contract("answer", Wording(steps="", what="code", shape='{"answer": CODE}'), modes=("direct",))

    def records_to_examples(
        self, rows: Iterable[tuple[int, dict[str, Any]]], source: Any
    ) -> Iterator[Example]:
        for _, row in rows:
            yield Example(
                id=str(row["id"]),
                task=self.name,
                input={"case": int(row["case"]), "colour": row["colour"]},
                target={"value": int(row["sft_code"]) if row.get("sft") else CODES[row["colour"]]},
                metadata={"category": "signal", "sft_code": int(row["sft_code"])},
            )

    def task_text(self) -> str:
        return ""

    def user_prompt(self, example: Example) -> str:
        return f"Case {example.input['case']}: the signal is {example.input['colour']}."

    def gold_value(self, example: Example) -> Any:
        return example.target["value"]

    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        ok = isinstance(value, int) and value == example.target["value"]
        return ok, value, "correct" if ok else f"expected {example.target['value']}"


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour = rng.choice(sorted(CODES))
        sft_code = CODES[colour] if rng.random() < RIGHT else WRONG
        rows.append(
            {"id": f"{seed}-{i}", "case": rng.randrange(1000), "colour": colour, "sft_code": sft_code}
        )
    return rows


def _recipe(path: Path, **body: Any) -> Path:
    path.write_text(yaml.safe_dump({"task": "signal_code", "task_options": {"mode": "direct"}, **body}))
    return path


def _evaluate(model: Path, data: Path, out: Path) -> float:
    """Greedy strict accuracy through `ehrmind eval`'s runner."""
    from ehrmind import get_task
    from ehrmind.eval.runner import run_eval, run_info
    from ehrmind.generate.hf import GenerationSettings, HFGenerator

    task = get_task("signal_code")
    examples = task.load(data)
    info = run_info(task, examples, str(data), model=str(model), samples=1, temperature=0.0, top_p=1.0)
    gen = HFGenerator(str(model), GenerationSettings(max_new_tokens=MAX_COMPLETION))
    return run_eval(task, examples, gen, out, batch_size=64, info=info, progress=False)["strict_accuracy"]


def _eval_prompt_ids(model: Path, data: Path) -> dict[str, list[int]]:
    """For each RL row's prompt text, the token ids evaluation's generator feeds the model for that example."""
    from ehrmind.generate.hf import HFGenerator
    from ehrmind.train.data import prompt_text

    task = SignalCodeTask()
    gen = HFGenerator(str(model))
    return {
        prompt_text(gen.tokenizer, task, ex): gen.tokenizer(
            gen.prompt_text(task.render(ex)), add_special_tokens=False
        )["input_ids"]
        for ex in task.load(data)
    }


@pytest.fixture(scope="module")
def warmed(tmp_path_factory) -> dict[str, Path]:
    """A tiny model warmed up on the SFT rows (35% right)."""
    from ehrmind.tasks.medcalc.tiny_corpus import tiny_corpus
    from ehrmind.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("sanity")
    train, heldout = root / "train.jsonl", root / "heldout.jsonl"
    atomic_write_jsonl(train, _rows(400, seed=1))
    atomic_write_jsonl(root / "sft.jsonl", [{**row, "sft": True} for row in _rows(400, seed=1)])
    atomic_write_jsonl(heldout, _rows(100, seed=2))
    corpus = [f"Case {i}: the signal is {c}." for i in range(50) for c in CODES]
    # the tests' usual tiny model (MedCalc's texts) plus the toy task's lines, as this test was calibrated on
    model = build_tiny_model(root / "model", size="tiny", seed=0, corpus=corpus, texts=tiny_corpus())
    recipe = _recipe(
        root / "sft.yaml",
        stage="sft",
        data=str(root / "sft.jsonl"),
        model=str(model),
        output_dir=str(root / "sft"),
        trl={**CPU, "learning_rate": 3e-3, "max_steps": 120, "per_device_train_batch_size": 16,
             "logging_steps": 10, "save_steps": 10**6, "max_length": 128},
    )  # fmt: skip
    result = runner.invoke(app, ["sft", "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    return {"root": root, "train": train, "heldout": heldout, "sft": root / "sft"}


@pytest.mark.slow  # 40 GRPO steps that must learn (about 20 s); quick GRPO steps: test_train.py
def test_grpo_learns_the_preferred_answer_and_the_plumbing_is_sound(warmed, monkeypatch):
    import torch
    import trl

    root = warmed["root"]
    seen: dict[str, list[Any]] = {"prompts": [], "rewards": [], "steps": []}
    tokenize = trl.GRPOTrainer._tokenize_prompts
    rewards_of = trl.GRPOTrainer._calculate_rewards
    score = trl.GRPOTrainer._generate_and_score_completions

    def record_prompts(self, prompts):
        out = tokenize(self, prompts)
        seen["prompts"].extend(zip(prompts, [list(p) for p in out[0]], strict=True))
        return out

    def record_rewards(self, inputs, prompts, completions, completion_ids_list):
        per_func = rewards_of(self, inputs, prompts, completions, completion_ids_list)
        seen["rewards"].append((per_func * self.reward_weights.to(per_func.device)).nansum(dim=1).tolist())
        return per_func

    def record_step(self, inputs):
        out = score(self, inputs)
        seen["steps"].append(
            {"advantages": out["advantages"].tolist(), "completion_ids": out["completion_ids"].tolist(),
             "completion_mask": out["completion_mask"].tolist(), "eos": self.eos_token_ids}
        )  # fmt: skip
        return out

    monkeypatch.setattr(trl.GRPOTrainer, "_tokenize_prompts", record_prompts)
    monkeypatch.setattr(trl.GRPOTrainer, "_calculate_rewards", record_rewards)
    monkeypatch.setattr(trl.GRPOTrainer, "_generate_and_score_completions", record_step)

    before = _evaluate(warmed["sft"], warmed["heldout"], root / "eval-sft")
    recipe = _recipe(
        root / "rl.yaml",
        stage="rl",
        data=str(warmed["train"]),
        model=str(warmed["sft"]),
        output_dir=str(root / "rl"),
        trl={**CPU, "use_vllm": False, "learning_rate": 2e-3, "warmup_steps": 3, "max_steps": 30,
             "per_device_train_batch_size": 32, "num_generations": 8, "max_completion_length": MAX_COMPLETION,
             "temperature": 1.0, "beta": 0.0, "logging_steps": 1, "save_steps": 10**6,
             "mask_truncated_completions": False},
    )  # fmt: skip
    result = runner.invoke(app, ["rl", "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    after = _evaluate(root / "rl", warmed["heldout"], root / "eval-rl")

    # learning: mean reward and greedy held-out accuracy rise
    history = [h for h in json.loads((root / "rl" / "log_history.json").read_text()) if "reward" in h]
    rewards = [h["reward"] for h in history]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    print(f"greedy held-out accuracy {before:.2f} -> {after:.2f}; mean reward {first:.2f} -> {last:.2f}")
    assert before <= 0.2, "the warm-up should prefer the wrong code (else the test shows nothing)"
    assert last > first + 0.4, rewards
    assert after >= before + 0.3, (before, after)

    # rollout prompts are token for token what evaluation feeds the model (same template, no second BOS)
    expected = _eval_prompt_ids(warmed["sft"], warmed["train"])
    for prompt, ids in seen["prompts"][:64]:
        assert ids == expected[prompt], (prompt, ids, expected[prompt])
    assert seen["prompts"], "no prompts recorded"

    # EOS stops generation: nothing but padding follows the first EOS, and short completions end in EOS
    for step in seen["steps"]:
        eos = set(step["eos"])
        for ids, mask in zip(step["completion_ids"], step["completion_mask"], strict=True):
            kept = [t for t, m in zip(ids, mask, strict=True) if m]
            if len(kept) < MAX_COMPLETION:
                assert kept and kept[-1] in eos, ids
            assert not any(t in eos for t in kept[:-1]), ids
    # truncation is handled as the recipe states: not masked (no EOS within the budget keeps the −2 reward)
    assert history[0].get("completions/clipped_ratio") is not None

    # advantages: non-zero when a group's rewards differ, zero when they do not, and ordered like the rewards
    groups_with_signal = 0
    for rewards_step, step in zip(seen["rewards"], seen["steps"], strict=True):
        r, a = torch.tensor(rewards_step), torch.tensor(step["advantages"])
        for g in range(0, len(r), 8):
            rg, ag = r[g : g + 8], a[g : g + 8]
            if rg.max() > rg.min():
                groups_with_signal += 1
                assert ag.abs().max() > 0
                assert ag[rg.argmax()] > 0 > ag[rg.argmin()]
            else:
                assert torch.allclose(ag, torch.zeros_like(ag))
    assert groups_with_signal > 0
