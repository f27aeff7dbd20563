"""Shared set-up of a training run (SFT or GRPO): task, data, tokenizer, model, LoRA, resume, run record."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrmind.io import atomic_write_json
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

    from ehrmind.generate.hf import load_pretrained

    # transformers 5 renames gradient_checkpointing; TRL still sets it, so the warning is noise here.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*deprecated", category=FutureWarning)
    from ehrmind.train.recipe import recipe_task

    task = recipe_task(recipe)
    split = recipe.split or ("train" if not Path(recipe.data).exists() else None)
    examples = task.load(recipe.data, split)[: recipe.limit]
    from ehrmind.train.recipe import model_init_kwargs

    init = model_init_kwargs(recipe)
    dtype = init.pop("dtype", torch.float32 if not torch.cuda.is_available() else "auto")
    tokenizer, model = load_pretrained(recipe.model, dtype, **init)
    if not torch.cuda.is_available():
        from ehrmind.runtime import warn_if_busy

        warn_if_busy(f"{recipe.stage} training")
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


def checkpoint_dirs(output_dir: str | Path) -> list[tuple[int, Path]]:
    """The `checkpoint-N` folders of a training run, by step, complete or not."""
    found = []
    for p in Path(output_dir).glob("checkpoint-*"):
        step = p.name.rpartition("-")[2]
        if step.isdigit() and p.is_dir():
            found.append((int(step), p))
    return sorted(found)


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest *complete* `checkpoint-N` in output_dir. The Trainer writes `trainer_state.json` last, so a
    run killed while saving leaves a folder without it (or with it cut short); transformers'
    `get_last_checkpoint` would pick that folder on every rerun and fail. It is skipped with a warning
    (issue #16, cause 3) and overwritten when training reaches that step again."""
    for _, p in reversed(checkpoint_dirs(output_dir)):
        try:
            json.loads((p / "trainer_state.json").read_text(encoding="utf-8"))
            return str(p)
        except (OSError, ValueError):
            log.warning("%s is incomplete (killed while saving?): resuming from an earlier checkpoint", p)
    return None


def write_run_record(
    recipe: Recipe, prepared: Prepared, data_counts: dict[str, int], trainer: Any, **extra: Any
) -> Path | None:
    """The resolved recipe, versions, seed, the model's and the data's revisions (`ehrmind.revisions`), data
    hash and process count, next to the checkpoints; for a translated flat TRL config, what went where."""
    if not trainer.accelerator.is_main_process:
        return None
    from ehrmind.revisions import data_revision, model_revision
    from ehrmind.train.recipe import model_init_kwargs

    out = Path(recipe.output_dir)
    imported = recipe.imported
    record = {
        "recipe": recipe.model_dump(mode="json"),
        "versions": versions(),
        "seed": recipe.seed,
        "model": recipe.model,
        "model_revision": model_revision(
            recipe.model, prepared.model, model_init_kwargs(recipe).get("revision")
        ),
        "data": recipe.data,
        "data_revision": data_revision(recipe.data),
        "data_sha256": examples_hash(prepared.examples),
        **({"imported_from": imported.to_dict()} if imported is not None else {}),
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
    # Every rank calls save_model: under DeepSpeed ZeRO-3 and FSDP the full weights are gathered by a
    # collective (rank 0 alone holds only its shard), and the Trainer writes on the main process only.
    trainer.save_model(str(out / "adapter" if recipe.lora.enabled else out))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        if recipe.lora.enabled:  # merge from the saved (gathered) adapter, on the CPU, into a plain model
            from ehrmind.train.recipe import model_init_kwargs

            load = {k: v for k, v in model_init_kwargs(recipe).items() if k != "dtype"}  # same revision, code
            merge_lora(
                recipe.model, out / "adapter", out, generation_config=prepared.model.generation_config, **load
            )
        prepared.tokenizer.save_pretrained(out)
        history = [h for h in trainer.state.log_history]
        atomic_write_json(out / "log_history.json", history)
        from ehrmind.train.report import write_training_report

        report = write_training_report(out, history, stage=recipe.stage, model=recipe.model, data=recipe.data)
        log.info("saved model to %s%s", out, f"; training report {report}" if report else "")
    trainer.accelerator.wait_for_everyone()
    return out


def merge_lora(base: str, adapter: Path, out: Path, *, generation_config: Any = None, **load: Any) -> None:
    """The base model with the adapter merged in, saved as a plain model folder the next stage can load
    (with the training run's generation config: it stops at the end of the assistant turn)."""
    import torch
    from peft import PeftModel

    from ehrmind.generate.hf import load_pretrained

    _, model = load_pretrained(base, torch.float32 if not torch.cuda.is_available() else "auto", **load)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    if generation_config is not None:
        merged.generation_config = generation_config
    merged.save_pretrained(out)


def load_run_record(output_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(output_dir) / RUN_RECORD).read_text(encoding="utf-8"))
