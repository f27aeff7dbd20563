"""Shared set-up of a training run (SFT or GRPO): task, data, tokenizer, model, LoRA, resume, run record."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrmind.io import atomic_write_json
from ehrmind.registry import get_task
from ehrmind.snapshot import examples_hash
from ehrmind.tasks.base import Task
from ehrmind.train.recipe import Recipe
from ehrmind.types import Example

log = logging.getLogger(__name__)

RUN_RECORD = "ehrmind_run.json"
PACKAGES = ("ehrmind", "torch", "transformers", "trl", "peft", "accelerate", "datasets")


@dataclass
class Prepared:
    task: Task
    examples: list[Example]
    tokenizer: Any
    model: Any
    peft_config: Any


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def prepare(recipe: Recipe) -> Prepared:
    """Load task and data first (cheap, fails fast on bad data), then tokenizer and model."""
    import warnings

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers 5 renames gradient_checkpointing; TRL still sets it, so the warning is noise here.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*deprecated", category=FutureWarning)
    opts = recipe.task_options
    task = get_task(
        recipe.task,
        mode=opts.mode,
        prefill=opts.prefill,
        system_prompt=opts.system_prompt,
        reward_weights=recipe.reward_weights.model_dump(),
    )
    split = recipe.split or ("train" if not Path(recipe.data).exists() else None)
    examples = task.load(recipe.data, split)[: recipe.limit]
    tokenizer = AutoTokenizer.from_pretrained(recipe.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.float32 if not torch.cuda.is_available() else "auto"
    model = AutoModelForCausalLM.from_pretrained(recipe.model, dtype=dtype)
    # Generation (GRPO rollouts, later evaluation) must stop at the end of the assistant turn.
    if tokenizer.eos_token_id is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    peft_config = None
    if recipe.lora.enabled:
        from peft import LoraConfig

        lo = recipe.lora
        peft_config = LoraConfig(
            r=lo.r,
            lora_alpha=lo.alpha,
            lora_dropout=lo.dropout,
            target_modules=lo.target_modules,
            task_type="CAUSAL_LM",
        )
    return Prepared(task, examples, tokenizer, model, peft_config)


def last_checkpoint(output_dir: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    path = Path(output_dir)
    return get_last_checkpoint(str(path)) if path.is_dir() else None


def write_run_record(
    recipe: Recipe, prepared: Prepared, data_counts: dict[str, int], trainer: Any, **extra: Any
) -> Path | None:
    """The resolved recipe, versions, seed, data hash and process count, next to the checkpoints."""
    if not trainer.accelerator.is_main_process:
        return None
    out = Path(recipe.output_dir)
    record = {
        "recipe": recipe.model_dump(mode="json"),
        "versions": versions(),
        "seed": recipe.seed,
        "data": recipe.data,
        "data_sha256": examples_hash(prepared.examples),
        "n_examples": len(prepared.examples),
        "data_counts": data_counts,
        "num_processes": trainer.accelerator.num_processes,
        **extra,
    }
    atomic_write_json(out / RUN_RECORD, record)
    return out / RUN_RECORD


def train_and_save(trainer: Any, recipe: Recipe, prepared: Prepared) -> Path:
    """Train (resuming from the last checkpoint in output_dir, if any) and save a loadable model folder.

    With LoRA the adapter is saved under `adapter/` and the merged full model in output_dir, so the next
    stage (or `ehrmind eval`) loads output_dir like any model."""
    resume = last_checkpoint(recipe.output_dir)
    if resume:
        log.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    out = Path(recipe.output_dir)
    if trainer.accelerator.is_main_process:
        model = trainer.model
        if recipe.lora.enabled:
            model.save_pretrained(out / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(out)
        prepared.tokenizer.save_pretrained(out)
        history = [h for h in trainer.state.log_history]
        atomic_write_json(out / "log_history.json", history)
        log.info("saved model to %s", out)
    trainer.accelerator.wait_for_everyone()
    return out


def load_run_record(output_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(output_dir) / RUN_RECORD).read_text(encoding="utf-8"))
