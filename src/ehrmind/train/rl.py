"""`ehrmind rl`: GRPO on TRL's GRPOTrainer, rewarded by `Task.verify` (format + correctness)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ehrmind.train.recipe import Recipe, template_kwargs
from ehrmind.train.run import Prepared

log = logging.getLogger(__name__)


def build_rl_trainer(recipe: Recipe) -> tuple[Any, Prepared]:
    """The GRPO trainer for a recipe. Writes the training record: build a trainer only to train (`run_rl`)."""
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from ehrmind.rewards.trl import reward_functions
    from ehrmind.train.data import rl_rows
    from ehrmind.train.run import prepare, start, write_run_record

    config = GRPOConfig(**start(recipe))  # before the model loads: ZeRO-3's zero.Init (see sft.py)
    prepared = prepare(recipe)
    rows, counts = rl_rows(
        prepared.task,
        prepared.examples,
        prepared.tokenizer,
        max_prompt_tokens=recipe.max_prompt_tokens,
        chat_template_kwargs=template_kwargs(recipe),
    )
    trainer = GRPOTrainer(
        model=prepared.model,
        reward_funcs=reward_functions(prepared.task, prepared.examples),
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=prepared.tokenizer,
        peft_config=prepared.peft_config,
    )
    write_run_record(recipe, prepared, counts, trainer, stage="rl")
    log.info("GRPO on %d prompts, %d completions per prompt", len(rows), config.num_generations)
    return trainer, prepared


def run_rl(recipe: Recipe) -> Path:
    """Train and save, or only say so when output_dir already holds this run trained (`run.run_stage`)."""
    from ehrmind.train.run import run_stage

    return run_stage(recipe, build_rl_trainer)
