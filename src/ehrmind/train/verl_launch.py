"""`ehrmind export-verl`: train/val parquet and a verl launch script that mirrors an ehrmind RL recipe.

The recipe's GRPO settings (TRL `GRPOConfig` fields) map onto verl 0.9.1's Hydra overrides in `verl_overrides`,
one place, listed in docs/verl.md. The prompt length verl pads and truncates to is measured on the data with
the model's tokenizer when it loads locally, else estimated from characters and flagged as such.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.tasks.base import Task
from ehrmind.types import Example

log = logging.getLogger(__name__)

VERL_VERSION = "0.9.1"
VERL_INSTALL = f"pip install 'verl[vllm]=={VERL_VERSION}'"
"""verl's `vllm` extra pulls `verl-core` (TransferQueue, which the default trainer imports) and vLLM; plain
`pip install verl` lacks TransferQueue."""

CHARS_PER_TOKEN = 3.0
"""For the estimate when no tokenizer loads: clinical text with numbers runs ~3-4 characters per token, so
this errs long (verl left-truncates prompts beyond `max_prompt_length`)."""


@dataclasses.dataclass(frozen=True)
class PromptLengths:
    max_tokens: int
    """The longest prompt kept, in tokens, with the generation prompt and the prefill."""
    measured: bool
    """True: counted with the model's tokenizer; False: estimated from characters."""
    how: str
    prefill_tokens: int = 0
    dropped: int = 0
    """Rows left out for being longer than the recipe's `max_prompt_tokens` (measured lengths only)."""


# ---------------------------------------------------------------- split


def group_field(
    examples: Sequence[Example], group_by: str | None = None, fields: Sequence[str] = ()
) -> str | None:
    """`group_by`, checked, or the first of the task's `split_fields` (one patient, one note) every example
    carries; None: each example is its own group."""
    if group_by:
        missing = sum(1 for ex in examples if ex.metadata.get(group_by) in (None, ""))
        if missing:
            raise ConfigError(
                f"--group-by {group_by}: {missing} examples have no metadata field {group_by!r}"
            )
        return group_by
    return next((f for f in fields if all(ex.metadata.get(f) not in (None, "") for ex in examples)), None)


def split_train_val(
    examples: Sequence[Example],
    fraction: float,
    seed: int,
    group_by: str | None = None,
    fields: Sequence[str] = (),
) -> tuple[list[Example], list[Example], str]:
    """A seeded held-out split by group (`group_field`; `fields`: the task's `split_fields`): (train, val,
    what was grouped by)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--val-fraction must be between 0 and 1, got {fraction}")
    field = group_field(examples, group_by, fields)
    key = (lambda ex: str(ex.metadata[field])) if field else (lambda ex: ex.id)
    groups = sorted({key(ex) for ex in examples})
    if len(groups) < 2:
        raise ConfigError(f"cannot hold out a validation split: the data has {len(groups)} group(s)")
    random.Random(seed).shuffle(groups)
    sizes: dict[str, int] = {}
    for ex in examples:
        sizes[key(ex)] = sizes.get(key(ex), 0) + 1
    target = math.ceil(fraction * len(examples))
    val_groups: set[str] = set()
    n = 0
    for g in groups[:-1]:  # at least one group stays in train
        if n >= target:
            break
        val_groups.add(g)
        n += sizes[g]
    train = [ex for ex in examples if key(ex) not in val_groups]
    val = [ex for ex in examples if key(ex) in val_groups]
    return train, val, field or "id"


# ---------------------------------------------------------------- prompt lengths


def load_tokenizer(model: str | None) -> tuple[Any, str]:
    """The model's tokenizer from local files only (a folder or the Hugging Face cache), or (None, why)."""
    if not model:
        return None, "no model given"
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model, local_files_only=True), f"tokenizer of {model}"
    except Exception as e:  # not downloaded, no tokenizer files, a remote-code model: estimate instead
        return None, f"tokenizer of {model} not available locally ({type(e).__name__})"


def measure_prompts(
    task: Task,
    examples: Sequence[Example],
    model: str | None,
    max_prompt_tokens: int | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> tuple[list[Example], PromptLengths]:
    """The examples kept and the longest prompt, counted as `ehrmind rl` counts (chat template, generation
    prompt, prefill); rows over `max_prompt_tokens` are dropped, as `ehrmind rl` drops them."""
    tokenizer, source = load_tokenizer(model)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None) is not None:
        from ehrmind.train.data import prompt_text

        counts = [
            len(tokenizer(prompt_text(tokenizer, task, ex, **(template_kwargs or {})))["input_ids"])
            for ex in examples
        ]
        kept = [
            (ex, n)
            for ex, n in zip(examples, counts, strict=True)
            if not max_prompt_tokens or n <= max_prompt_tokens
        ]
        if not kept:
            raise ConfigError(f"every prompt is longer than max_prompt_tokens {max_prompt_tokens}")
        prefill = (
            len(tokenizer.encode(task.prefill_text, add_special_tokens=False)) if task.prefill_text else 0
        )
        lengths = PromptLengths(
            max(n for _, n in kept), True, f"measured with the {source}", prefill, len(examples) - len(kept)
        )
        return [ex for ex, _ in kept], lengths
    if tokenizer is not None:
        source = f"{source} has no chat template"

    def chars(ex: Example) -> int:
        return sum(len(m["content"]) + 16 for m in task.render(ex))  # 16: role markers per turn

    estimate = math.ceil(max(chars(ex) for ex in examples) / CHARS_PER_TOKEN)
    if max_prompt_tokens:
        estimate = min(estimate, max_prompt_tokens)
    prefill = math.ceil(len(task.prefill_text) / CHARS_PER_TOKEN)
    how = f"ESTIMATED from characters (÷{CHARS_PER_TOKEN:g}): {source}"
    return list(examples), PromptLengths(estimate, False, how, prefill)


# ---------------------------------------------------------------- the mapping


def grpo_settings(trl: dict[str, Any]) -> dict[str, Any]:
    """The recipe's `trl` values over TRL `GRPOConfig`'s defaults (what `ehrmind rl` would run with)."""
    from trl import GRPOConfig

    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig) if f.init}
    return {**{k: v for k, v in defaults.items() if v is not dataclasses.MISSING}, **trl}


LOSS_AGG = {
    "grpo": "seq-mean-token-mean",
    "bnpo": "token-mean",
    "dapo": "token-mean",
    "dr_grpo": "seq-mean-token-sum-norm",
}
"""TRL `loss_type` → verl `actor.loss_agg_mode`."""


def verl_overrides(
    trl: dict[str, Any],
    *,
    train_file: Path,
    val_file: Path,
    lengths: PromptLengths,
    reward_path: Path,
    gpus: int,
    seed: int,
    output_dir: str | None,
    experiment: str,
    agent_loops: Path | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """verl 0.9.1 Hydra overrides for `python3 -m verl.trainer.main_ppo`, from the recipe's GRPO settings."""
    t = grpo_settings(trl)
    g = int(t["num_generations"])
    per_device = int(t["per_device_train_batch_size"])
    accumulation = int(t["gradient_accumulation_steps"])
    steps = int(t.get("steps_per_generation") or accumulation)
    completions = int(t.get("generation_batch_size") or per_device * gpus * steps)
    if completions % g:
        raise ConfigError(
            f"{completions} completions per generation (per_device_train_batch_size {per_device} × {gpus} GPUs "
            f"× steps_per_generation {steps}) is not a multiple of num_generations {g}; change --gpus or the recipe"
        )
    prompts = completions // g
    updates = max(1, steps // accumulation)  # optimizer steps per generation batch
    if prompts % updates:
        raise ConfigError(f"{prompts} prompts per step do not split into {updates} optimizer steps")
    beta = float(t.get("beta") or 0.0)
    epsilon = float(t["epsilon"])
    loss_type = str(t.get("loss_type") or "grpo")
    if loss_type not in LOSS_AGG:
        raise ConfigError(f"trl.loss_type {loss_type!r} has no verl equivalent here ({', '.join(LOSS_AGG)})")
    scale = t.get("scale_rewards", "group")
    o: dict[str, Any] = {
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": scale not in (False, "none", "batch"),
        "algorithm.use_kl_in_reward": False,
        "data.train_files": str(train_file),
        "data.val_files": str(val_file),
        "data.max_prompt_length": lengths.max_tokens,
        "data.max_response_length": int(t["max_completion_length"]),
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        "data.train_batch_size": prompts,
        "data.seed": seed,
        "actor_rollout_ref.model.path": "$MODEL",  # the script's MODEL variable
        "actor_rollout_ref.actor.optim.lr": float(t["learning_rate"]),
        "actor_rollout_ref.actor.ppo_mini_batch_size": prompts // updates,
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": per_device,
        "actor_rollout_ref.actor.use_kl_loss": beta > 0,
        "actor_rollout_ref.actor.kl_loss_coef": beta,
        "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
        "actor_rollout_ref.actor.clip_ratio_low": epsilon,
        "actor_rollout_ref.actor.clip_ratio_high": float(t.get("epsilon_high") or epsilon),
        "actor_rollout_ref.actor.loss_agg_mode": LOSS_AGG[loss_type],
        "actor_rollout_ref.actor.entropy_coeff": 0,
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.n": g,
        "actor_rollout_ref.rollout.temperature": float(t["temperature"]),
        "actor_rollout_ref.rollout.top_p": float(t["top_p"]),
        "actor_rollout_ref.rollout.prompt_length": lengths.max_tokens + lengths.prefill_tokens,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": int(t.get("vllm_tensor_parallel_size") or 1),
        "actor_rollout_ref.rollout.gpu_memory_utilization": float(
            t.get("vllm_gpu_memory_utilization") or 0.3
        ),
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": per_device,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": per_device,
        "reward.custom_reward_function.path": str(reward_path),
        "reward.custom_reward_function.name": "compute_score",
        "trainer.n_gpus_per_node": gpus,
        "trainer.nnodes": 1,
        "trainer.total_epochs": int(math.ceil(float(t["num_train_epochs"]))),
        "trainer.logger": "[console]",  # nothing leaves the machine unless configured (ehrmind's default)
        "trainer.project_name": "ehrmind",
        "trainer.experiment_name": experiment,
    }
    if lengths.prefill_tokens == 0:
        o["actor_rollout_ref.rollout.prompt_length"] = lengths.max_tokens
    if str(t.get("save_strategy")) == "steps" and t.get("save_steps"):
        o["trainer.save_freq"] = int(t["save_steps"])
        o["trainer.test_freq"] = int(t["save_steps"])
    if output_dir:
        o["trainer.default_local_dir"] = output_dir
    for k, v in (template_kwargs or {}).items():  # `++`: add to verl's empty mapping
        o[f"++data.apply_chat_template_kwargs.{k}"] = v
    if agent_loops is not None:
        o["actor_rollout_ref.rollout.agent.agent_loop_config_path"] = str(agent_loops)
    return o


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def launch_script(overrides: dict[str, Any], *, model: str | None, header: Sequence[str]) -> str:
    """A bash script running verl's trainer with the overrides; extra `key=value` arguments are appended."""
    default = (
        f'MODEL="${{MODEL:-{model}}}"'
        if model
        else 'MODEL="${MODEL:?set MODEL to the model path (no --model or recipe model at export)}"'
    )
    lines = ["#!/usr/bin/env bash", *(f"# {h}" if h else "#" for h in header), "set -euo pipefail", default]
    lines += ["export MODEL", "exec python3 -m verl.trainer.main_ppo \\"]
    for k, v in overrides.items():
        arg = f'"{k}={v}"' if v == "$MODEL" else shlex.quote(f"{k}={_value(v)}")
        lines.append(f"    {arg} \\")
    lines.append('    "$@"')
    return "\n".join(lines) + "\n"


def script_overrides(text: str) -> dict[str, str]:
    """The `key=value` overrides a launch script passes (for tests and for reading one back)."""
    body = text.split("verl.trainer.main_ppo", 1)[1].replace("\\\n", " ")
    return dict(a.split("=", 1) for a in shlex.split(body) if "=" in a and not a.startswith("$"))


AGENT_LOOPS_YAML = (
    "# ehrmind's prefill agent loop for verl (docs/verl.md); rows name it with agent_name.\n"
    "- name: {name}\n  _target_: ehrmind.rewards.verl_agent.PrefillAgentLoop\n"
)


# ---------------------------------------------------------------- writing


def replace_folder(out: Path, overwrite: bool) -> tuple[Path, Any]:
    """A temporary sibling folder to fill, and a function that swaps it in for `out` in one step."""
    from ehrmind.io import output_folder

    if out.exists() and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} is not empty; use another --out or --overwrite to replace it")
    output_folder(out.parent)
    output_folder(out, create=False)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    tmp.chmod(0o755)

    def commit() -> None:
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{tmp.name}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    return tmp, commit


def export_verl(
    task: Task,
    train: Sequence[Example],
    val: Sequence[Example],
    out: str | Path,
    *,
    trl: dict[str, Any],
    model: str | None,
    gpus: int = 8,
    seed: int = 0,
    output_dir: str | None = None,
    max_prompt_tokens: int | None = None,
    template_kwargs: dict[str, Any] | None = None,
    overwrite: bool = False,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write OUT/train.parquet, OUT/val.parquet, OUT/run_verl.sh (and OUT/agent_loops.yaml with a prefill)
    and OUT/export.json; the folder appears whole or not at all. Returns what export.json records."""
    import ehrmind
    import ehrmind.rewards.verl as reward_module
    from ehrmind.rewards.verl import PREFILL_AGENT, write_verl_parquet

    out = Path(out).resolve()
    tmp, commit = replace_folder(out, overwrite)
    try:
        train_kept, lengths = measure_prompts(task, train, model, max_prompt_tokens, template_kwargs)
        val_kept, val_lengths = measure_prompts(task, val, model, max_prompt_tokens, template_kwargs)
        if val_lengths.max_tokens > lengths.max_tokens:
            lengths = dataclasses.replace(lengths, max_tokens=val_lengths.max_tokens)
        write_verl_parquet(task, train_kept, tmp / "train.parquet", split="train")
        write_verl_parquet(task, val_kept, tmp / "val.parquet", split="val")
        agent_loops = None
        if task.prefill_text:
            agent_loops = out / "agent_loops.yaml"
            (tmp / "agent_loops.yaml").write_text(
                AGENT_LOOPS_YAML.format(name=PREFILL_AGENT), encoding="utf-8"
            )
        reward_path = Path(reward_module.__file__).resolve()
        overrides = verl_overrides(
            trl,
            train_file=out / "train.parquet",
            val_file=out / "val.parquet",
            lengths=lengths,
            reward_path=reward_path,
            gpus=gpus,
            seed=seed,
            output_dir=output_dir,
            experiment=task.name,
            agent_loops=agent_loops,
            template_kwargs=template_kwargs,
        )
        header = [
            f"verl launch written by ehrmind {ehrmind.__version__} export-verl (docs/verl.md).",
            f"Install: {VERL_INSTALL}   then: pip install --no-deps <ehrmind> (ehrmind's verifier, pure Python)",
            f"Run: MODEL=/path/to/model bash {out / 'run_verl.sh'} [extra key=value overrides]",
            f"Prompts: {lengths.max_tokens} tokens at most, {lengths.how}.",
            f"KL: trl.beta {overrides['actor_rollout_ref.actor.kl_loss_coef']:g} -> actor.use_kl_loss="
            f"{_value(overrides['actor_rollout_ref.actor.use_kl_loss'])} (beta 0: no KL term, and verl builds "
            "no reference model).",
        ]
        (tmp / "run_verl.sh").write_text(
            launch_script(overrides, model=model, header=header), encoding="utf-8"
        )
        (tmp / "run_verl.sh").chmod(0o755)
        info = {
            **(record or {}),
            "ehrmind_version": ehrmind.__version__,
            "verl_version": VERL_VERSION,
            "verl_install": VERL_INSTALL,
            "n_train": len(train_kept),
            "n_val": len(val_kept),
            "dropped_prompt_too_long": lengths.dropped + val_lengths.dropped,
            "prompt_lengths": dataclasses.asdict(lengths),
            "reward_function": str(reward_path),
            "overrides": overrides,
        }
        (tmp / "export.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
        commit()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info
