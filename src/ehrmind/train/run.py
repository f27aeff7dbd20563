"""Shared set-up of a training run (SFT or GRPO): task, data, tokenizer, model, LoRA, resume, and the training
record (`ehrmind_run.json`; an eval folder's `run.json` is its run record)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.io import atomic_write_json, output_folder, saving
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


EXTRAS = {
    "vllm": "GRPO rollouts on vLLM",
    "deepspeed": "DeepSpeed (ZeRO)",
}
"""ehrmind's optional extras a recipe or launcher can ask for: the package, and what needs it."""


def start(recipe: Recipe) -> dict[str, Any]:
    """What every training run does first, before any model loads: the TRL config's keyword arguments, a
    one-line ConfigError naming ehrmind's extra when a package they need is missing, and a warning for each
    setting that prints notes or sends data off the machine (`privacy_warnings`)."""
    import warnings

    from ehrmind.train.recipe import privacy_warnings, trl_kwargs

    # transformers 5 renamed gradient_checkpointing: ehrmind passes the new name (recipe.trl_kwargs), and
    # TRL's trainer still calls the old model methods, so their warning is noise here.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*deprecated", category=FutureWarning)
    kwargs = trl_kwargs(recipe)
    for warning in privacy_warnings(recipe.trl):
        log.warning("%s", warning)
    check_installed(recipe, kwargs)
    return kwargs


def check_installed(recipe: Recipe, kwargs: dict[str, Any]) -> None:
    """vLLM for `use_vllm` rollouts, DeepSpeed for a DeepSpeed config (`trl.deepspeed`, or an accelerate
    config that asks for it): a missing one is a ConfigError naming the extra that installs it; likewise a
    tracker `report_to` names."""
    import importlib.util
    import os

    needed = []
    if recipe.stage == "rl" and kwargs.get("use_vllm"):
        needed.append(("vllm", "trl.use_vllm is true", " (or set trl.use_vllm=false)"))
    if kwargs.get("deepspeed"):
        needed.append(("deepspeed", f"trl.deepspeed is {kwargs['deepspeed']!r}", ""))
    elif os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        needed.append(("deepspeed", "the accelerate config uses DeepSpeed", ""))
    for package, why, alternative in needed:
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"{why} but {package} is not installed: pip install 'ehrmind[{package}]' for "
                f"{EXTRAS[package]}{alternative}"
            )
    report_to = kwargs.get("report_to")
    for tracker in [report_to] if isinstance(report_to, str) else list(report_to or []):
        modules = TRACKER_MODULES.get(str(tracker), ())
        if modules and not any(importlib.util.find_spec(m) for m in modules):
            raise ConfigError(
                f"trl.report_to names {tracker} but it is not installed: pip install {modules[0]} (or set "
                "trl.report_to=none)"
            )


TRACKER_MODULES = {
    "azure_ml": ("azureml",),
    "clearml": ("clearml",),
    "codecarbon": ("codecarbon",),
    "comet_ml": ("comet_ml",),
    "dagshub": ("dagshub",),
    "dvclive": ("dvclive",),
    "flyte": ("flytekit",),
    "mlflow": ("mlflow",),
    "neptune": ("neptune",),
    "swanlab": ("swanlab",),
    "tensorboard": ("tensorboard", "tensorboardX"),
    "trackio": ("trackio",),
    "wandb": ("wandb",),
}
"""transformers' reporting integrations (`report_to`) and the modules each needs."""


def prepare(recipe: Recipe) -> Prepared:
    """Load task and data first (cheap, fails fast on bad data), then tokenizer and model."""
    import torch

    from ehrmind.models import load_pretrained
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


def last_checkpoint(output_dir: str | Path, *, warn: bool = True) -> str | None:
    """The newest *complete* `checkpoint-N` in output_dir. The Trainer writes `trainer_state.json` last, so a
    run killed while saving leaves a folder without it (or with it cut short); transformers'
    `get_last_checkpoint` would pick that folder on every rerun and fail. It is skipped with a warning
    (issue #16, cause 3) and overwritten when training reaches that step again."""
    for _, p in reversed(checkpoint_dirs(output_dir)):
        if _trainer_state(p) is not None:
            return str(p)
        if warn:
            log.warning("%s is incomplete (killed while saving?): resuming from an earlier checkpoint", p)
    return None


TRAINER_STATE = "trainer_state.json"
"""The Trainer's state (global_step, planned max_steps, log): in each checkpoint, and in output_dir once
`train_and_save` has saved the finished model (written last there, so it marks a finished save)."""


def _trainer_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("global_step"), int) else None


def _saved_step(out: Path) -> int | None:
    """The step of the finished model saved in output_dir: from its trainer state, or, for a folder saved
    before ehrmind wrote one there, the last step of its log_history.json (also written after the model)."""
    state = _trainer_state(out)
    if state is not None:
        return int(state["global_step"])
    try:
        history = json.loads((out / "log_history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    steps = [h["step"] for h in history if isinstance(h, dict) and isinstance(h.get("step"), int)]
    return max(steps) if steps and (out / "config.json").is_file() else None


def planned_steps(recipe: Recipe, state: dict[str, Any] | None) -> int | None:
    """The optimizer steps the recipe trains to: `trl.max_steps`, or for a run by epochs, its epochs at the
    pace (steps per epoch) the Trainer's last state in output_dir shows (exact once an epoch has ended); None
    when there is no such state (the Trainer then works it out from the data)."""
    import dataclasses
    import math

    from ehrmind.train.recipe import trl_config_class

    max_steps = int(recipe.trl.get("max_steps") or -1)
    if max_steps > 0:
        return max_steps
    epoch = float((state or {}).get("epoch") or 0)
    if epoch <= 0:
        return None
    fields = {f.name: f for f in dataclasses.fields(trl_config_class(recipe.stage))}
    epochs = float(recipe.trl.get("num_train_epochs", fields["num_train_epochs"].default))
    return math.ceil(epochs * state["global_step"] / epoch - 1e-9)  # type: ignore[index]


@dataclass(frozen=True)
class Trained:
    """A run whose output_dir already holds the steps its recipe plans."""

    output_dir: Path
    folder: Path
    """Where the newest step is: output_dir (its finished model) or a checkpoint in it."""
    step: int
    planned: int

    @property
    def saved(self) -> bool:
        """Whether output_dir holds the finished model of that step; False when only a checkpoint does (the
        run was stopped after its last checkpoint, before its final save)."""
        return self.folder == self.output_dir

    def message(self) -> str:
        past = "" if self.step == self.planned else f", past the {self.planned} planned"
        if self.saved:
            return (
                f"{self.folder} is already trained (step {self.step}{past}): nothing to train. To train on, "
                "raise trl.max_steps (or num_train_epochs); to start over, choose another output_dir"
            )
        return (
            f"{self.folder} holds the last step ({self.step}{past}) but the final save to {self.output_dir} did "
            f"not finish (stopped while saving?): give {self.folder} as the model, raise trl.max_steps to train "
            "on and save, or remove the folder to start over"
        )


def trained(recipe: Recipe) -> Trained | None:
    """Whether output_dir already holds this run trained to its end (`planned_steps`), counting its finished
    model and its newest complete checkpoint. The Trainer would resume such a run for one more step (at the
    end of a decaying schedule, at learning rate 0) and the training record would be rewritten (issue #26, item 7)."""
    out = Path(recipe.output_dir)
    saved = _saved_step(out)
    ckpt = last_checkpoint(out, warn=False)
    ckpt_state = _trainer_state(Path(ckpt)) if ckpt else None
    newest = [(saved, 1, out)] if saved is not None else []
    if ckpt is not None and ckpt_state is not None:
        newest.append((int(ckpt_state["global_step"]), 0, Path(ckpt)))  # on a tie, the finished model
    if not newest:
        return None
    step, _, folder = max(newest)
    planned = planned_steps(recipe, _trainer_state(out) or ckpt_state)
    if planned is None or step < planned:
        return None
    return Trained(out, folder, step, planned)


def run_stage(recipe: Recipe, build: Callable[[Recipe], tuple[Any, Prepared]]) -> Path:
    """Train a stage (`build` makes its trainer and writes its training record) and save its model, unless
    output_dir already holds it trained: then say so and return, the folder as it was. A run stopped after
    its last checkpoint but before its final save is a ConfigError saying where its model is."""
    output_folder(recipe.output_dir, create=False)  # a file in the way: one line, before any model loads
    done = trained(recipe)
    if done is not None and not done.saved:
        raise ConfigError(done.message())
    if done is not None:
        log.info("%s", done.message())
        return done.output_dir
    trainer, prepared = build(recipe)
    return train_and_save(trainer, recipe, prepared)


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
    out = Path(recipe.output_dir)
    # A checkpoint that cannot be written (disk full) is one line; `last_checkpoint` skips what it left.
    with saving(out):
        trainer.train(resume_from_checkpoint=resume)
    if trainer.accelerator.is_main_process:  # a save cut short must not look finished (`trained`)
        for marker in (TRAINER_STATE, "log_history.json"):
            (out / marker).unlink(missing_ok=True)
    with saving(out):
        _save_final(trainer, recipe, prepared, out)
    return out


def _save_final(trainer: Any, recipe: Recipe, prepared: Prepared, out: Path) -> None:
    """The trained model as a loadable folder in `out`, its training report, and the Trainer's state last
    (the mark of a finished save)."""
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
        trainer.create_model_card(model_name=out.name)
        name_base_model(out / "README.md", recipe.model)
        trainer.save_state()  # output_dir/trainer_state.json, written last: the finished save (`trained`)
        log.info("saved model to %s%s", out, f"; training report {report}" if report else "")
    trainer.accelerator.wait_for_everyone()


NO_BASE = "[None](https://huggingface.co/None)"
"""What TRL's model card says of a base model loaded from a local folder ("a fine-tuned version of [None]")."""


def base_model(model: str) -> tuple[str | None, list[str]]:
    """The Hub model a local model folder comes from, following the training records (`ehrmind_run.json`) of the
    ehrmind runs that wrote it down to a Hub id, or to a folder `ehrmind get-model` built (its `hub_id`); and
    the local folders on the way. None when the chain ends in another local model (e.g. a tiny model)."""
    from ehrmind.pretrained import read_model_record

    chain: list[str] = []
    while Path(model).is_dir():
        if model in chain:
            return None, chain
        chain.append(model)
        try:
            record = load_run_record(model)
        except (OSError, ValueError):  # not an ehrmind run's folder: the chain's local root
            return (read_model_record(model) or {}).get("hub_id"), chain
        local = "config_sha256" in (record.get("model_revision") or {})
        if not isinstance(record.get("model"), str):
            return None, chain
        model = record["model"]
        if local and not Path(model).is_dir():  # a local folder no longer there
            return None, [*chain, model]
    return model, chain


def name_base_model(card: Path, model: str) -> None:
    """TRL's model card names the base model only when it was loaded from the Hub; for a local folder (an
    SFT output, a tiny model) it says "a fine-tuned version of [None]". The card gets the Hub model the folder
    comes from (`base_model`) and the local folders on the way, or the local folder."""
    if not card.is_file() or NO_BASE not in card.read_text(encoding="utf-8"):
        return
    from huggingface_hub import ModelCard

    hub, chain = base_model(model)
    if hub is None:  # the chain's last folder is the local base model
        chain, hub_or_root = chain[:-1], f"the local model `{chain[-1] if chain else model}`"
    else:
        hub_or_root = f"[{hub}](https://huggingface.co/{hub})"
    named = hub_or_root + (", through " + " → ".join(f"`{c}`" for c in chain) if chain else "")
    doc = ModelCard.load(card)
    doc.text = doc.text.replace(NO_BASE, named)
    if hub:
        doc.data.base_model = hub
    doc.save(card)


def merge_lora(base: str, adapter: Path, out: Path, *, generation_config: Any = None, **load: Any) -> None:
    """The base model with the adapter merged in, saved as a plain model folder the next stage can load
    (with the training run's generation config: it stops at the end of the assistant turn)."""
    import torch
    from peft import PeftModel

    from ehrmind.models import load_pretrained

    _, model = load_pretrained(base, torch.float32 if not torch.cuda.is_available() else "auto", **load)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    if generation_config is not None:
        merged.generation_config = generation_config
    merged.save_pretrained(out)


def load_run_record(output_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(output_dir) / RUN_RECORD).read_text(encoding="utf-8"))
