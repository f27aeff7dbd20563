"""`ehrmind export-verl`: train/val parquet, a verl launch script that runs an ehrmind RL recipe as TRL would,
and the way back from verl's checkpoints to a folder `ehrmind eval` loads.

Every TRL `GRPOConfig` setting of the recipe is mirrored into verl 0.9.1's Hydra overrides or refused with the
reason (`verl_mirror`; docs/verl.md lists them); every path in the script is absolute. The prompt length verl
pads and truncates to is measured on the data with the model's tokenizer when it loads locally, else estimated
from characters and flagged as such. `merge_verl.sh` merges a checkpoint with verl's own model merger and writes
`ehrmind_run.json` (the resolved recipe) beside it.
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
from ehrmind.tasks.base import Task, given_options
from ehrmind.train.verl_mirror import (
    ROLLOUT,
    Inputs,
    Mirror,
    Refusal,
    accept,
    grpo_settings,
    mirror,
)
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
            len(tokenizer.encode(task.contract.prefill, add_special_tokens=False))
            if task.contract.prefill
            else 0
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
    prefill = math.ceil(len(task.contract.prefill) / CHARS_PER_TOKEN)
    how = f"ESTIMATED from characters (÷{CHARS_PER_TOKEN:g}): {source}"
    return list(examples), PromptLengths(estimate, False, how, prefill)


# ---------------------------------------------------------------- paths


def location(value: str | None) -> str | None:
    """A local path made absolute; a Hub id (`org/name` or `name`, not a local path) as given. The launch
    script runs from anywhere, so nothing in it is relative to where the export ran."""
    if not value:
        return value
    path = Path(value).expanduser()
    local = path.exists() or path.is_absolute() or value.startswith((".", "~")) or value.count("/") > 1
    return str(path.resolve()) if local else value


RECIPELESS_TRL = {"lr_scheduler_type": "constant"}
"""What an export without --recipe sets over TRL's defaults (recorded in its training record)."""


def export_recipe(
    recipe: Any,
    task: Task,
    *,
    data: str,
    split: str | None,
    model: str | None,
    output_dir: str | Path,
    seed: int,
    trl_overrides: Sequence[str] = (),
) -> Any:
    """The recipe verl runs, resolved as `ehrmind rl` resolves one: its task with the options the export used
    (command-line --mode, --prefill, --task-option included), the reward weights the rows carry, absolute data,
    model and output paths, and the seed. Without a --recipe, one is built from the command's task and data,
    with `trl_overrides` (`trl.KEY=VALUE`, as --set gives them) over TRL's defaults and a constant learning
    rate (`RECIPELESS_TRL`: verl's own schedule; TRL's default linear decay has no verl counterpart, and
    without a recipe there is no TRL run to be faithful to).
    Its `model_dump(mode="json")` is the `recipe` of the training record the way back writes (`merge_verl.sh`)."""
    from ehrmind.train.recipe import apply_overrides, validate_recipe

    base: dict[str, Any] = (
        recipe.model_dump(mode="json") if recipe is not None else {"stage": "rl", "trl": dict(RECIPELESS_TRL)}
    )
    if recipe is None and trl_overrides:
        stray = [o for o in trl_overrides if not o.strip().startswith("trl.")]
        if stray:
            raise ConfigError(
                f"--set {stray[0]}: without --recipe, --set takes trl.* settings (task options: --mode, "
                "--prefill, --task-option)"
            )
        base = apply_overrides(base, list(trl_overrides))
    options = {k: v for k, v in given_options(task).items() if k != "reward_weights"}
    base.update(
        task=task.name,
        task_options=json.loads(json.dumps(options, default=str)),
        reward_weights=dataclasses.asdict(task.options.reward_weights),
        data=location(data),
        split=split,
        model=location(model) or "",
        output_dir=str(Path(output_dir).expanduser().resolve()),
        seed=seed,
    )
    return validate_recipe(base, "export-verl")


# ---------------------------------------------------------------- the launch


def verl_overrides(
    recipe: Any,
    *,
    train_file: Path,
    val_file: Path,
    lengths: PromptLengths,
    reward_path: Path,
    gpus: int,
    n_train: int,
    experiment: str,
    agent_loops: Path | None = None,
    allow: Sequence[str] = (),
) -> tuple[dict[str, Any], Mirror, list[Refusal]]:
    """verl 0.9.1 Hydra overrides for `python3 -m verl.trainer.main_ppo` from a resolved recipe: the data and
    paths, then every GRPO setting through `verl_mirror.mirror` (refusals not in `allow` are a ConfigError).
    Returns the overrides, the mirror (what is not carried, the step count) and the accepted differences."""
    from ehrmind.train.recipe import model_init_kwargs, template_kwargs

    lora = recipe.lora.model_dump() if recipe.lora.enabled else None
    m = mirror(
        Inputs(
            trl=grpo_settings(recipe.trl),
            given=frozenset(recipe.trl),
            gpus=gpus,
            n_train=n_train,
            seed=recipe.seed,
            model_kwargs=model_init_kwargs(recipe),
            lora=lora,
        )
    )
    accepted = accept(m, list(allow))
    o: dict[str, Any] = {
        "data.train_files": str(train_file),
        "data.val_files": str(val_file),
        "data.max_prompt_length": lengths.max_tokens,
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        "actor_rollout_ref.model.path": "$MODEL",  # the script's MODEL variable
        ROLLOUT + "prompt_length": lengths.max_tokens + lengths.prefill_tokens,
        **m.overrides,
        "reward.custom_reward_function.path": str(reward_path),
        "reward.custom_reward_function.name": "compute_score",
        "trainer.n_gpus_per_node": gpus,
        "trainer.nnodes": 1,
        "trainer.logger": ["console"],  # nothing leaves the machine unless configured (ehrmind's default)
        "trainer.project_name": "ehrmind",
        "trainer.experiment_name": experiment,
        "trainer.default_local_dir": recipe.output_dir,
    }
    for k, v in template_kwargs(recipe).items():  # `++`: add to verl's empty mapping
        o[f"++data.apply_chat_template_kwargs.{k}"] = v
    if agent_loops is not None:
        o[ROLLOUT + "agent.agent_loop_config_path"] = str(agent_loops)
    return o, m, accepted


def hydra_value(v: Any) -> str:
    """A value as Hydra's override grammar reads it back (lists, mappings, null; text that would parse as a
    number, such as verl's `lower_upper` thresholds, quoted)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{hydra_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return v
        return f"'{v}'"
    return str(v)


def launch_script(
    overrides: dict[str, Any], *, model: str | None, checkpoints: str, header: Sequence[str]
) -> str:
    """A bash script running verl's trainer with the overrides; extra `key=value` arguments are appended. It
    notes the MODEL it trains beside the checkpoints, for the training record `merge_verl.sh` writes."""
    default = (  # the model's name is data: quoted for the shell, expanded once, never evaluated
        f'EXPORTED_MODEL={shlex.quote(model)}\nMODEL="${{MODEL:-$EXPORTED_MODEL}}"'
        if model
        else 'MODEL="${MODEL:?set MODEL to the model path (no --model or recipe model at export)}"'
    )
    ckpt = shlex.quote(checkpoints)
    comments = (f"# {one_line(h)}" if h else "#" for h in header)
    lines = ["#!/usr/bin/env bash", *comments, "set -euo pipefail", default]
    lines += [
        "export MODEL",
        f"mkdir -p {ckpt} && printf '%s\\n' \"$MODEL\" > {shlex.quote(str(Path(checkpoints) / MODEL_NOTE))}",
        "exec python3 -m verl.trainer.main_ppo \\",
    ]
    for k, v in overrides.items():
        arg = f'"{k}={v}"' if v == "$MODEL" else shlex.quote(f"{k}={hydra_value(v)}")
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


# ---------------------------------------------------------------- the way back

MODEL_NOTE = "ehrmind_model.txt"
"""Beside verl's checkpoints: the MODEL run_verl.sh trained (the training record's model)."""

MERGE_SCRIPT = """\
#!/usr/bin/env bash
# The way back from verl (docs/verl.md): merge the actor's FSDP shards of one checkpoint (default: the last)
# into a Hugging Face folder with verl's own merger, and write ehrmind_run.json beside the weights, holding the
# resolved recipe (task, task options, chat-template variables), so `ehrmind eval --model TARGET` renders the
# prompts this run trained on. Run it where verl is installed (PYTHON: that interpreter, default python3).
# Usage: bash {script} [STEP] [TARGET]     (default TARGET: {checkpoints}/global_step_STEP/huggingface_model)
set -euo pipefail
CHECKPOINTS={checkpoints_q}
EXPORT={export_q}
PYTHON="${{PYTHON:-python3}}"
if [ -n "${{1:-}}" ]; then STEP="$1"; else
  test -f "$CHECKPOINTS/latest_checkpointed_iteration.txt" || {{ echo "no verl checkpoint in $CHECKPOINTS" >&2; exit 1; }}
  STEP="$(cat "$CHECKPOINTS/latest_checkpointed_iteration.txt")"
fi
ACTOR="$CHECKPOINTS/global_step_$STEP/actor"
TARGET="${{2:-$CHECKPOINTS/global_step_$STEP/huggingface_model}}"
test -d "$ACTOR" || {{ echo "no actor checkpoint at $ACTOR" >&2; exit 1; }}
"$PYTHON" -m verl.model_merger merge --backend fsdp{trust} --local_dir "$ACTOR" --target_dir "$TARGET"
"$PYTHON" - "$EXPORT/export.json" "$TARGET" "$ACTOR" "$STEP" "$CHECKPOINTS/{note}" <<'EOF'
import json, sys
from pathlib import Path

export, target, actor, step, note = sys.argv[1:]
record = json.loads(Path(export).read_text(encoding="utf-8"))["run_record"]
if Path(note).is_file():  # the MODEL run_verl.sh trained
    record["model"] = record["recipe"]["model"] = Path(note).read_text(encoding="utf-8").strip()
record.update(verl_checkpoint=actor, global_step=int(step))
Path(target, "ehrmind_run.json").write_text(json.dumps(record, indent=2) + "\\n", encoding="utf-8")
EOF
echo "wrote $TARGET (step $STEP) with ehrmind_run.json; evaluate it: ehrmind eval --model $TARGET --data ..."
"""


def one_line(text: Any) -> str:
    """`text` for a shell comment: a line break in a path or a name would end the comment and run the rest."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def merge_script(export: Path, checkpoints: str, *, trust_remote_code: bool) -> str:
    """`merge_verl.sh`: verl's checkpoint → a Hugging Face folder `ehrmind eval` loads with its training prompt."""
    return MERGE_SCRIPT.format(
        script=one_line(export / "merge_verl.sh"),
        checkpoints=one_line(checkpoints),
        checkpoints_q=shlex.quote(checkpoints),
        export_q=shlex.quote(str(export)),
        trust=" --trust-remote-code" if trust_remote_code else "",
        note=MODEL_NOTE,
    )


def run_record(recipe: Any, task: Task, out: Path, accepted: Sequence[Refusal]) -> dict[str, Any]:
    """The `ehrmind_run.json` `merge_verl.sh` writes beside the merged weights (it adds the checkpoint and the
    MODEL trained): the resolved recipe as `ehrmind rl` records it, and where it came from."""
    import ehrmind

    return {
        "recipe": recipe.model_dump(mode="json"),
        "exported_to": "verl",
        "verl_version": VERL_VERSION,
        "export": str(out),
        "ehrmind_version": ehrmind.__version__,
        "task_version": task.version,
        "seed": recipe.seed,
        "model": recipe.model,
        "data": recipe.data,
        "accepted_differences": [r.line() for r in accepted],
    }


# ---------------------------------------------------------------- writing


def replace_folder(out: Path, overwrite: bool) -> tuple[Path, Any]:
    """A temporary sibling folder to fill, and a function that swaps it in for `out` in one step."""
    from ehrmind.io import output_folder

    if out.exists() and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} is not empty; use another --out or --overwrite to replace it")
    if (out / CHECKPOINTS / "latest_checkpointed_iteration.txt").exists():
        raise ConfigError(f"{out / CHECKPOINTS} holds verl checkpoints; --overwrite would delete them")
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


CHECKPOINTS = "checkpoints"
"""verl's checkpoints inside the export folder, when the recipe names no output_dir."""


def _header(
    out: Path, recipe: Any, lengths: PromptLengths, m: Mirror, accepted: Sequence[Refusal], n_train: int
) -> list[str]:
    import ehrmind

    t = grpo_settings(recipe.trl)
    shape = m.shape
    basis = (
        f"trl.max_steps {t['max_steps']}"
        if int(t["max_steps"]) > 0
        else f"trl.num_train_epochs {t['num_train_epochs']} over train.parquet's {n_train} prompts"
    )
    lines = [
        f"verl launch written by ehrmind {ehrmind.__version__} export-verl (docs/verl.md).",
        f"Install: {VERL_INSTALL}   then: pip install --no-deps <ehrmind> (ehrmind's verifier, pure Python)",
        f"Run: MODEL=/path/to/model bash {out / 'run_verl.sh'} [extra key=value overrides]",
        f"Back: bash {out / 'merge_verl.sh'} [STEP]  -> a Hugging Face folder with ehrmind_run.json (ehrmind eval)",
        f"Prompts: {lengths.max_tokens} tokens at most, {lengths.how}.",
        f"Steps: {m.total_steps} verl steps of {shape.prompts} prompts x {t['num_generations']} samples "
        f"({shape.optimizer_steps} optimizer step(s) each), from {basis}.",
        f"KL: trl.beta {float(t['beta'] or 0):g} -> actor.use_kl_loss={'true' if t['beta'] else 'false'} "
        "(beta 0: no KL term, and verl builds no reference model).",
        "Every GRPOConfig setting is mirrored below or refused (docs/verl.md, 'What each setting maps to').",
    ]
    if accepted:
        lines.append("ACCEPTED DIFFERENCES (--allow-unmirrored), verl does not run these as TRL would:")
        lines += [f"  {r.line()}" for r in accepted]
    if m.not_carried:
        lines.append(f"Not carried (how TRL runs, not what it trains): {', '.join(m.not_carried)}.")
    return lines


def export_verl(
    task: Task,
    train: Sequence[Example],
    val: Sequence[Example],
    out: str | Path,
    *,
    recipe: Any,
    gpus: int = 8,
    allow: Sequence[str] = (),
    overwrite: bool = False,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write OUT/train.parquet, OUT/val.parquet, OUT/run_verl.sh, OUT/merge_verl.sh (and OUT/agent_loops.yaml
    with a prefill) and OUT/export.json for a resolved recipe (`export_recipe`); the folder appears whole or not
    at all. Returns what export.json records."""
    import ehrmind
    import ehrmind.rewards.verl as reward_module
    from ehrmind.rewards.verl import PREFILL_AGENT, write_verl_parquet
    from ehrmind.train.recipe import model_init_kwargs, template_kwargs

    out = Path(out).resolve()
    tmp, commit = replace_folder(out, overwrite)
    try:
        kwargs = template_kwargs(recipe)
        model = recipe.model or None
        train_kept, lengths = measure_prompts(task, train, model, recipe.max_prompt_tokens, kwargs)
        val_kept, val_lengths = measure_prompts(task, val, model, recipe.max_prompt_tokens, kwargs)
        if val_lengths.max_tokens > lengths.max_tokens:
            lengths = dataclasses.replace(lengths, max_tokens=val_lengths.max_tokens)
        agent_loops = out / "agent_loops.yaml" if task.contract.prefill else None
        reward_path = Path(reward_module.__file__).resolve()
        overrides, m, accepted = verl_overrides(
            recipe,
            train_file=out / "train.parquet",
            val_file=out / "val.parquet",
            lengths=lengths,
            reward_path=reward_path,
            gpus=gpus,
            n_train=len(train_kept),
            experiment=task.name,
            agent_loops=agent_loops,
            allow=allow,
        )
        write_verl_parquet(task, train_kept, tmp / "train.parquet", split="train")
        write_verl_parquet(task, val_kept, tmp / "val.parquet", split="val")
        if agent_loops is not None:
            (tmp / "agent_loops.yaml").write_text(
                AGENT_LOOPS_YAML.format(name=PREFILL_AGENT), encoding="utf-8"
            )
        header = _header(out, recipe, lengths, m, accepted, len(train_kept))
        script = launch_script(overrides, model=model, checkpoints=recipe.output_dir, header=header)
        trust = bool(
            model_init_kwargs(recipe).get("trust_remote_code") or recipe.trl.get("trust_remote_code")
        )
        for name, text in (
            ("run_verl.sh", script),
            ("merge_verl.sh", merge_script(out, recipe.output_dir, trust_remote_code=trust)),
        ):
            (tmp / name).write_text(text, encoding="utf-8")
            (tmp / name).chmod(0o755)
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
            "checkpoints": recipe.output_dir,
            "total_training_steps": m.total_steps,
            "accepted_differences": [r.line() for r in accepted],
            "not_carried": m.not_carried,
            "overrides": overrides,
            "run_record": run_record(recipe, task, out, accepted),
        }
        (tmp / "export.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
        commit()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info
