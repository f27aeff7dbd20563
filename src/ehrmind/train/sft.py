"""`ehrmind sft`: the SFT warm-up on TRL's SFTTrainer (loss on the assistant completion only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ehrmind.train.recipe import Recipe, template_kwargs
from ehrmind.train.run import Prepared

log = logging.getLogger(__name__)


def build_sft_trainer(recipe: Recipe, extra_rows: list[dict[str, str]] | None = None) -> tuple[Any, Prepared]:
    """The SFT trainer for a recipe; `extra_rows` (prompt/completion text, e.g. knowledge cards rendered with
    the model's chat template) are added to the rows built from the data. Writes the training record: build a
    trainer only to train (`run_sft`, `run.run_stage`)."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    from ehrmind.train.data import select_examples, sft_rows
    from ehrmind.train.run import prepare, start, write_run_record

    # The TRL config first: under `accelerate launch` with DeepSpeed ZeRO-3 it enables zero.Init, so the
    # model loaded next is partitioned as it loads instead of materialised whole on every rank (issue #14).
    config = SFTConfig(**{"completion_only_loss": True, **start(recipe)})
    prepared = prepare(recipe)
    sd = recipe.sft_data
    selected = select_examples(
        prepared.examples,
        fraction=sd.fraction,
        per_category_cap=sd.per_category_cap,
        categories=sd.categories,
        subgroups=sd.subgroups,
        per_group=sd.per_group,
        seed=sd.seed,
        fraction_rule=sd.fraction_rule,
        task=prepared.task,
    )
    rows, counts = sft_rows(
        prepared.task,
        selected,
        prepared.tokenizer,
        max_prompt_tokens=recipe.max_prompt_tokens,
        chat_template_kwargs=template_kwargs(recipe),
    )
    if extra_rows:
        rows += [{"example_id": "", **r} for r in extra_rows]
        counts["extra"] = len(extra_rows)
    trainer = SFTTrainer(
        model=prepared.model,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=prepared.tokenizer,
        peft_config=prepared.peft_config,
    )
    write_run_record(recipe, prepared, {**counts, "selected": len(selected)}, trainer, stage="sft")
    log.info("SFT on %d rows (%d selected of %d)", len(rows), len(selected), len(prepared.examples))
    return trainer, prepared


def run_sft(recipe: Recipe, extra_rows: list[dict[str, str]] | None = None) -> Path:
    """Train and save, or only say so when output_dir already holds this run trained (`run.run_stage`)."""
    from ehrmind.train.run import run_stage

    return run_stage(recipe, lambda r: build_sft_trainer(r, extra_rows))
