"""Recipes: one YAML per model × stage × task, validated before any model loads.

A recipe has ehrmind's own fields (task, data, model and how it loads, SFT data builder, reward weights, LoRA)
and a `trl:` section mapped onto TRL's own `SFTConfig` / `GRPOConfig`, so every TRL knob is available without
being re-declared here. `include:` pulls in a base recipe; plan fragments (`--plan FILE`, e.g. a diagnosis's
`sft_plan.yaml`) merge on top; `--set key=value` overrides win (dotted keys reach nested fields, e.g.
`trl.learning_rate=1e-3`). A flat TRL / open-r1 config is translated first (`ehrmind.train.flat`).

Two names meet here: ehrmind's `reward_weights` (correct / wrong / bad_format: what `Task.verify` pays) and
TRL's `GRPOConfig.reward_weights` (a list weighting reward functions). Only the first is accepted:
`trl.reward_weights` is refused, so the GRPO reward stays exactly the verifier's.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ehrmind.errors import ConfigError
from ehrmind.io import parse_yaml, read_yaml
from ehrmind.registry import display_name
from ehrmind.tasks.base import TaskOptions, check_kind, kind_problem, type_name
from ehrmind.types import RewardWeights

log = logging.getLogger(__name__)

Stage = Literal["sft", "rl"]


class _Strict(BaseModel):
    """Unknown keys, NaN and infinity are refused, and so is a flag given for a number or a number for a flag
    (`seed: true`, `lora: {enabled: 1}`), in every section."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _kinds(cls, value: Any, info: ValidationInfo) -> Any:
        return check_kind(cls, value, info.field_name)


class RewardWeightsOptions(_Strict):
    """`ehrmind.types.RewardWeights` as a recipe section: its defaults are read from there (one declaration)."""

    correct: float = RewardWeights.correct
    wrong: float = RewardWeights.wrong
    bad_format: float = Field(RewardWeights.bad_format, description="A penalty: keep it <= wrong.")
    format: Literal["paper", "strict"] = Field(
        RewardWeights.format,
        description="paper: the EHRMind paper's format and answer rules (text around the tags tolerated, "
        "plain-JSON answer, MedCalc answers read as its eval would: '120 mmHg' earns 0); strict: ehrmind's "
        "contract, the verdict strict accuracy counts.",
    )


class LoraOptions(_Strict):
    enabled: bool = False
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"


class SFTDataOptions(_Strict):
    builder: Literal["explanation"] = Field(
        "explanation",
        description="explanation: the row's reference explanation inside <think>, gold answer in JSON.",
    )
    fraction: float | None = Field(
        None, gt=0, le=1, description="Share of the training rows kept (paper: 0.2), by `fraction_rule`."
    )
    fraction_rule: Literal["paper", "per_category"] = Field(
        "paper",
        description="paper: the EHRMind paper's mix for the task (MedCalc: every category capped at total/7, "
        "small categories first, risk fills the rest); per_category: that share of each category.",
    )
    per_category_cap: int | None = Field(None, ge=1, description="At most this many rows per category.")
    categories: list[str] | None = Field(
        None, description="Only these categories (e.g. from a diagnosis plan)."
    )
    subgroups: list[str] | None = Field(
        None,
        description="Only rows of these finer groups, by the names or ids the task gives them "
        "(`Groups.subgroup_names`). Its old name, calculators, is still read, with a warning.",
    )
    per_group: dict[str, int] | None = Field(
        None, description="Exact row counts per category or finer group (as `subgroups` names them)."
    )
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _old_name_of_subgroups(cls, data: Any) -> Any:
        """`calculators`, this field's name before it served every task, is read as `subgroups` (warned)."""
        if not isinstance(data, dict) or "calculators" not in data:
            return data
        data = dict(data)
        old = data.pop("calculators")
        if data.get("subgroups") is not None and old is not None and data["subgroups"] != old:
            raise ValueError("calculators is the old name of subgroups; set only sft_data.subgroups")
        log.warning("sft_data.calculators is deprecated: read as sft_data.subgroups; rename it in the recipe")
        if data.get("subgroups") is None:
            data["subgroups"] = old
        return data


class ModelKwargs(_Strict):
    """How `model` is loaded: keyword arguments of `from_pretrained` (the revision and remote-code flag also
    reach the tokenizer). Unset fields keep transformers' defaults (dtype: float32 on CPU, auto on GPU)."""

    dtype: Literal["auto", "float32", "float16", "bfloat16", "float64"] | None = Field(
        None, description="Weights dtype (TRL's older name: torch_dtype)."
    )
    attn_implementation: str | None = Field(
        None,
        description="Attention kernel: eager, sdpa, flash_attention_2, … (default: transformers' choice).",
    )
    trust_remote_code: bool | None = Field(
        None, description="Run the model repository's own Python code (only for models that need it)."
    )
    revision: str | None = Field(
        None, description="Hub branch, tag or commit of the model and its tokenizer (TRL: model_revision)."
    )


class Recipe(_Strict):
    stage: Stage
    task: str = Field(description="Registered task name: every recipe names the task it trains.")
    task_options: SerializeAsAny[TaskOptions] = Field(
        default_factory=TaskOptions,
        description="The task's options (prompt mode, prefill, system prompt, and the task's own, e.g. "
        "trec_ct's prompt_token_budget), checked against the task's options model (`Task.Options`).",
    )
    data: str = Field(description="Training data: local file, snapshot, or Hub dataset id.")
    split: str | None = Field(None, description="Split of a Hub dataset (default train).")
    limit: int | None = Field(None, ge=1, description="Use only the first N training rows.")
    model: str = Field(description="Model folder or Hub id; for rl, typically the SFT output_dir.")
    model_kwargs: ModelKwargs = Field(
        default_factory=ModelKwargs,
        description="How `model` loads (dtype, attn_implementation, trust_remote_code, revision); merged with "
        "trl.model_init_kwargs, a key set in both to different values is refused.",
    )
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra variables for the model's chat template (e.g. enable_thinking: false), used "
        "wherever ehrmind renders a prompt and passed to GRPOConfig.chat_template_kwargs.",
    )
    output_dir: str
    seed: int = 0
    max_prompt_tokens: int | None = Field(
        None, ge=8, description="Drop (and count) training prompts longer than this; notes are never cut."
    )
    sft_data: SFTDataOptions = SFTDataOptions()
    reward_weights: RewardWeightsOptions = RewardWeightsOptions()
    lora: LoraOptions = LoraOptions()
    trl: dict[str, Any] = Field(default_factory=dict, description="Fields of TRL's SFTConfig / GRPOConfig.")
    _imported: Any = PrivateAttr(None)

    @property
    def imported(self) -> Any:
        """The `Translation` of a flat TRL / open-r1 config this recipe came from (None for a recipe)."""
        return self._imported

    @field_validator("trl")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in ("output_dir", "seed"):
            if key in v:
                raise ValueError(f"set `{key}` at the top level of the recipe, not under trl")
        return v


# ---------------------------------------------------------------- loading


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


MAX_RECIPE_FILES = 32
"""Files one recipe may read, itself and its includes counted each time they are read: a few recipes that
each include the next one twice would otherwise read files 2**n times (a hang, not an error)."""
MAX_RECIPE_BYTES = 4_000_000
"""Bytes one recipe may read, its includes counted each time (each file is at most `MAX_YAML_BYTES`)."""


def _read_yaml(path: Path, seen: tuple[Path, ...] = (), read: list[Path] | None = None) -> dict[str, Any]:
    """A recipe file with its `include:`s merged under it (a cycle, or more than MAX_RECIPE_FILES reads, is
    refused); its keys must be names."""
    path = path.resolve()
    read = [] if read is None else read
    if path in seen:
        raise ConfigError(f"{path}: include cycle ({' -> '.join(str(p) for p in (*seen, path))})")
    read.append(path)
    if len(read) > MAX_RECIPE_FILES:
        raise ConfigError(
            f"{read[0]}: its includes read more than {MAX_RECIPE_FILES} files (a file included twice counts "
            "twice); include each base once"
        )
    if sum(p.stat().st_size for p in read if p.is_file()) > MAX_RECIPE_BYTES:
        raise ConfigError(f"{read[0]}: its includes read more than {MAX_RECIPE_BYTES:,} bytes in all")
    raw = read_yaml(path, "recipe")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values, not {type(raw).__name__}")
    not_names = [k for k in raw if not isinstance(k, str)]
    if not_names:
        raise ConfigError(f"{path}: key {not_names[0]!r} is not a name (recipe keys are text)")
    includes = raw.pop("include", None)
    includes = [includes] if isinstance(includes, str) else [] if includes is None else includes
    if not isinstance(includes, list) or not all(isinstance(i, str) and i.strip() for i in includes):
        raise ConfigError(f"{path}: include: expected a file name or a list of file names, got {includes!r}")
    merged: dict[str, Any] = {}
    for inc in includes:
        merged = _deep_merge(merged, _read_yaml(path.parent / inc, (*seen, path), read))
    return _deep_merge(merged, raw)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key=value` / `a.b=value` overrides; values are parsed as YAML scalars."""
    data = dict(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p} is not a section")
        node[parts[-1]] = parse_yaml(value, f"--set {key.strip()}")
    return data


def load_recipe(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    stage: Stage | None = None,
    plans: Sequence[str | Path] | None = None,
    task: str | None = None,
    drop: Sequence[str] = (),
) -> Recipe:
    """Read, merge includes, apply overrides and validate — TRL fields included — without loading a model.

    `plans` are recipe fragments (e.g. the `sft_plan.yaml` written by `ehrmind diagnose`), deep-merged in
    order after the includes and before the overrides, so `--set` still wins. A flat TRL / open-r1 config is
    translated first (`ehrmind.train.flat.translate_flat`; `task` and `drop` are its options) and the report
    of what went where is kept in `Recipe.imported`; `task` also replaces an ehrmind recipe's task."""
    from ehrmind.train.flat import is_flat, translate_flat

    raw = _read_yaml(Path(path))
    translation = None
    if is_flat(raw):
        if stage is None:
            raise ConfigError(f"{path} is a flat TRL config; say the stage it is for (sft or rl)")
        translation = translate_flat(raw, stage=stage, task=task, drop=drop, source=str(path))
        data = translation.recipe
    else:
        data = _select_stage(raw, stage, path)
        if task is not None:
            data["task"] = task
    for plan in plans or []:
        fragment = _read_yaml(Path(plan))
        if "stage" in fragment or any(isinstance(fragment.get(k), dict) for k in ("sft", "rl")):
            raise ConfigError(f"{plan}: a plan is a fragment of one stage's recipe; it cannot set stages")
        data = _deep_merge(data, fragment)
    data = apply_overrides(data, overrides or [])
    if data.get("stage", "sft") not in ("sft", "rl"):
        raise ConfigError(f"{path}: stage: expected sft or rl, got {data['stage']!r}")
    if stage is not None:
        data.setdefault("stage", stage)
        if data["stage"] != stage:
            raise ConfigError(f"{path} is a {data['stage']!r} recipe; use `ehrmind {data['stage']}` for it")
    where = f"{path} (with plan {', '.join(str(p) for p in plans)})" if plans else f"{path}"
    recipe = validate_recipe(data, where)
    recipe._imported = translation
    return recipe


def validate_recipe(data: dict[str, Any], where: str) -> Recipe:
    """A recipe from a mapping: ehrmind's keys, TRL's fields, model and chat-template keyword arguments."""
    try:
        recipe = Recipe.model_validate({**data, "task_options": _task_options(data, where)})
    except ValidationError as e:
        raise ConfigError(f"{where}: {_explain(e)}") from None
    try:
        recipe.trl = check_trl_fields(recipe)
        model_init_kwargs(recipe)  # a conflict with model_kwargs, or a key ehrmind cannot pass, fails here
        template_kwargs(recipe)
        check_vllm(recipe)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return recipe


def recipe_task(recipe: Recipe, **changes: Any) -> Any:
    """The Task a recipe trains: its task with every task option and the recipe's reward weights
    (`changes`, e.g. a command's --mode, win)."""
    from ehrmind.registry import get_task

    options = {k: v for k, v in recipe.task_options if k != "reward_weights"}
    options.update(reward_weights=recipe.reward_weights.model_dump(), **changes)
    return get_task(recipe.task, **options)


def _task_name(data: dict[str, Any], where: str) -> str:
    """The task the recipe names; a recipe without one is refused (no task is trained by default)."""
    from ehrmind.registry import list_tasks

    name = data.get("task")
    if not name:
        raise ConfigError(
            f"{where}: the recipe names no task; add `task: <name>` "
            f"(registered tasks: {', '.join(list_tasks())})"
        )
    if not isinstance(name, str):
        raise ConfigError(f"{where}: task: expected a task name, got {name!r}")
    return name


def _task_options(data: dict[str, Any], where: str) -> TaskOptions:
    """The recipe's `task_options:` checked by its task's own options model (so a recipe can pass any option
    the task takes). Reward weights have their own top-level key, and training prompts one way (not one-shot)."""
    from ehrmind.registry import check_options, task_class

    opts = data.get("task_options") or {}
    if not isinstance(opts, dict):
        raise ConfigError(f"{where}: task_options must be a mapping of option names to values")
    if "reward_weights" in opts:
        raise ConfigError(f"{where}: set reward_weights at the top level of the recipe, not in task_options")
    if opts.get("mode") == "one-shot":
        raise ConfigError(
            f"{where}: task_options.mode: training prompts are 'reasoning' or 'direct', not one-shot"
        )
    cls = task_class(_task_name(data, where))
    try:
        return cls.Options(**check_options(cls, opts, where="task_options."))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _select_stage(data: dict[str, Any], stage: Stage | None, path: str | Path) -> dict[str, Any]:
    """A file may hold both stages: shared keys at the top, `sft:` and `rl:` sections for each stage."""
    for k in ("sft", "rl"):
        if k in data and not isinstance(data[k], dict):
            raise ConfigError(f"{path}: {k}: a stage's section is a mapping of keys, got {data[k]!r}")
    sections = {k: data[k] for k in ("sft", "rl") if k in data}
    if not sections:
        return data
    if stage is None:
        raise ConfigError(f"{path} holds several stages ({', '.join(sections)}); say which one to run")
    if stage not in sections:
        raise ConfigError(f"{path} has no {stage!r} section")
    shared = {k: v for k, v in data.items() if k not in ("sft", "rl")}
    return {**_deep_merge(shared, sections[stage]), "stage": stage}


MAX_EXPLAINED = 5
"""Problems an error message lists (a recipe of 60,000 unknown keys gets one line naming the first few)."""


def _explain(e: ValidationError) -> str:
    """One line for pydantic's errors: the first MAX_EXPLAINED problems, unknown keys with the closest known
    one (or the known keys), and how many more there are."""
    msgs = []
    errors = e.errors()
    known_listed = False
    for err in errors[:MAX_EXPLAINED]:
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parent = Recipe
            for p in err["loc"][:-1]:
                ann = parent.model_fields.get(str(p))
                parent = ann.annotation if ann and isinstance(ann.annotation, type) else parent
            known = list(parent.model_fields) if hasattr(parent, "model_fields") else []
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if not close and not known_listed:
                hint, known_listed = f"; known keys: {', '.join(known)}", True
            msgs.append(f"unknown key {_shown(loc)}{hint}")
        elif err["type"] == "missing":
            msgs.append(f"{loc}: missing (a required key)")
        else:
            got = "" if err["type"] == "value_error" else f" (got {_shown(err.get('input'))})"
            msgs.append(f"{loc}: {str(err['msg']).removeprefix('Value error, ')}{got}")
    if len(errors) > MAX_EXPLAINED:
        msgs.append(f"and {len(errors) - MAX_EXPLAINED:,} more problems")
    return "; ".join(msgs)


def _shown(value: Any, chars: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= chars else f"{text[: chars - 3]}..."


# ---------------------------------------------------------------- TRL fields


def trl_config_class(stage: Stage) -> type:
    if stage == "sft":
        from trl import SFTConfig

        return SFTConfig
    from trl import GRPOConfig

    return GRPOConfig


def _no_gpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        return True


# On CPU TRL's defaults pick bf16 and run 5-7x slower or fail; these apply unless the recipe sets them.
CPU_DEFAULTS = {"bf16": False, "fp16": False, "use_cpu": True, "gradient_checkpointing": False}
# Nothing leaves the machine unless the user configures it: no experiment trackers by default.
PRIVATE_DEFAULTS = {"report_to": "none"}


def _max_steps(steps: int) -> int:
    if steps != -1 and steps < 1:  # TRL trains num_train_epochs for any steps <= 0: -7 ran 192 steps
        raise ValueError("expected a number of optimizer steps >= 1, or -1 to train num_train_epochs")
    return steps


def _warmup(warmup: float) -> float:
    if warmup < 0 or (warmup >= 1 and not warmup.is_integer()):
        raise ValueError("expected a share of the steps in [0, 1) or a whole number of steps")
    return warmup


_Positive = Annotated[float, Field(gt=0)]
_NonNegative = Annotated[float, Field(ge=0)]
_Count = Annotated[int, Field(ge=1)]
_Share = Annotated[float, Field(ge=0, lt=1)]

TRL_RANGES: dict[str, Any] = {
    "max_steps": Annotated[int, AfterValidator(_max_steps)],
    "num_train_epochs": _Positive,
    "learning_rate": _Positive,
    "per_device_train_batch_size": _Count,
    "per_device_eval_batch_size": _Count,
    "gradient_accumulation_steps": _Count,
    "generation_batch_size": _Count,
    "steps_per_generation": _Count,
    "num_iterations": _Count,
    "max_completion_length": _Count,
    "max_length": _Count,
    "vllm_max_model_length": _Count,
    "logging_steps": _Positive,
    "save_steps": _Positive,
    "eval_steps": _Positive,
    "warmup_steps": Annotated[float, AfterValidator(_warmup)],
    "warmup_ratio": Annotated[float, Field(ge=0, le=1)],
    "weight_decay": _NonNegative,
    "max_grad_norm": _NonNegative,
    "adam_beta1": _Share,
    "adam_beta2": _Share,
    "adam_epsilon": _Positive,
    "temperature": _Positive,
    "top_p": Annotated[float, Field(gt=0, le=1)],
    "epsilon": _NonNegative,
    "epsilon_high": _NonNegative,
    "vllm_gpu_memory_utilization": Annotated[float, Field(gt=0, le=1)],
    "dataloader_num_workers": Annotated[int, Field(ge=0)],
}
"""The range of the TRL fields whose impossible values TRL (or transformers) would take without a word, or
only refuse once the model has loaded: checked on top of each field's declared type (`check_trl_fields`)."""


def _check_trl_value(cls: type, key: str, value: Any, hint: Any) -> Any:
    """One TRL field's value checked against its declared type (no flag for a number or number for a flag),
    finite, and in its range (`TRL_RANGES`); returned typed. A ConfigError naming the field otherwise."""
    import math

    shown = f"trl.{key} = {_shown(value)}"
    problem = kind_problem(hint, value)
    if problem:
        raise ConfigError(f"{shown}: {problem}")
    try:
        adapter = TypeAdapter(hint)
    except Exception:  # an exotic annotation pydantic can't model: TRL checks it itself
        return value
    try:
        valid = adapter.validate_python(value)
    except ValidationError:
        raise ConfigError(f"{shown} has the wrong type; {cls.__name__} expects {type_name(hint)}") from None
    if isinstance(valid, float) and not math.isfinite(valid):
        raise ConfigError(f"{shown}: expected a finite number")
    if key in TRL_RANGES and valid is not None:
        try:
            TypeAdapter(TRL_RANGES[key]).validate_python(valid)
        except ValidationError as e:
            raise ConfigError(f"{shown}: {str(e.errors()[0]['msg']).removeprefix('Value error, ')}") from None
    return valid


def check_trl_fields(recipe: Recipe) -> dict[str, Any]:
    """Unknown TRL keys, wrong types, impossible values (`TRL_RANGES`) and a group size that doesn't divide
    the batch fail here, early.

    Returns the TRL values coerced to their declared types ("3e-3" from YAML becomes 0.003)."""
    import dataclasses
    import typing

    cls = trl_config_class(recipe.stage)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    coerced: dict[str, Any] = {}
    if "reward_weights" in recipe.trl:
        raise ConfigError(
            "trl.reward_weights (TRL's weights of reward functions) would rescale ehrmind's format_reward and "
            "correctness_reward, so the GRPO reward would no longer be the verifier's; set the top-level "
            "reward_weights (correct, wrong, bad_format) instead"
        )
    for key, value in recipe.trl.items():
        coerced[key] = value
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown trl.{display_name(key)} for {cls.__name__}{hint}")
        valid = _check_trl_value(cls, key, value, hints.get(key, Any))
        if type(valid) in (int, float, bool) and not isinstance(value, type(valid)):
            coerced[key] = valid  # a number or flag given as text
    if recipe.stage == "rl":
        t = coerced
        g = int(t.get("num_generations") or fields["num_generations"].default or 8)
        per_device = int(
            t.get("per_device_train_batch_size") or fields["per_device_train_batch_size"].default
        )
        steps = t.get("steps_per_generation") or t.get("gradient_accumulation_steps", 1)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        batch = t.get("generation_batch_size") or per_device * world * int(steps)
        if g < 2:
            raise ConfigError("trl.num_generations (the group size) must be >= 2 for GRPO advantages")
        if batch % g:
            raise ConfigError(
                f"the generation batch ({batch} = per_device_train_batch_size {per_device} × processes {world} × "
                f"steps {steps}) must be divisible by trl.num_generations ({g}); e.g. set "
                f"trl.per_device_train_batch_size to a multiple of {g}"
            )
        beta = t.get("beta", 0.0)
        if isinstance(beta, (int, float)) and beta < 0:
            raise ConfigError(
                "trl.beta is the KL penalty coefficient and must be >= 0 (a negative value rewards KL)"
            )
        context = t.get("vllm_max_model_length")
        if t.get("use_vllm") and context is not None and recipe.max_prompt_tokens:
            completion = int(t.get("max_completion_length") or fields["max_completion_length"].default)
            if context < recipe.max_prompt_tokens + completion:
                raise ConfigError(
                    f"trl.vllm_max_model_length ({context}) must hold the longest kept prompt and its completion: "
                    f"max_prompt_tokens {recipe.max_prompt_tokens} + trl.max_completion_length {completion} = "
                    f"{recipe.max_prompt_tokens + completion}"
                )
    try:  # RewardWeights holds the ordering rule
        RewardWeights(**recipe.reward_weights.model_dump())
    except ValueError as e:
        raise ConfigError(f"reward_weights: {e}") from None
    return coerced


def trl_kwargs(recipe: Recipe) -> dict[str, Any]:
    """Keyword arguments for the TRL config: CPU and privacy defaults, then the recipe's own values."""
    kwargs: dict[str, Any] = dict(PRIVATE_DEFAULTS)
    if _no_gpu():
        kwargs.update(CPU_DEFAULTS)
        if recipe.stage == "rl":
            kwargs["use_vllm"] = False
    kwargs.update(recipe.trl)
    kwargs.pop("model_init_kwargs", None)  # ehrmind loads the model itself with them (`model_init_kwargs`)
    kwargs.pop("chat_template_kwargs", None)
    template = template_kwargs(recipe)
    if template and recipe.stage == "rl":  # SFTConfig has no such field: ehrmind renders every SFT prompt
        kwargs["chat_template_kwargs"] = template
    remote = model_init_kwargs(recipe).get("trust_remote_code")
    if remote is not None:  # TRL passes its own field to the colocated vLLM engine and the reference model
        kwargs["trust_remote_code"] = remote
    _renamed_checkpointing(kwargs, recipe.stage)
    kwargs["output_dir"] = recipe.output_dir
    kwargs["seed"] = recipe.seed
    return kwargs


def _renamed_checkpointing(kwargs: dict[str, Any], stage: Stage) -> None:
    """transformers 5 renamed `gradient_checkpointing(_kwargs)` to `activation_checkpointing(_kwargs)` and warns
    (a FutureWarning, on every run) when a config is built with the old name set, which TRL's configs always
    do by default. Where the new name exists, the value goes there instead; recipes keep either name."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(trl_config_class(stage)) if f.init}
    for old, new in (
        ("gradient_checkpointing", "activation_checkpointing"),
        ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"),
    ):
        if new not in fields or old not in fields:
            continue
        value = kwargs.pop(old, fields[old].default)
        if kwargs.get(new) is None and value is not None:
            kwargs[new] = value


LOCAL_TRACKERS = ("none", "tensorboard")
"""`trl.report_to` values that keep everything on the machine; any other (wandb, mlflow, comet_ml, neptune,
clearml, trackio, …, or "all": every tracker installed) may send what it logs off it."""


def privacy_warnings(trl: dict[str, Any]) -> list[str]:
    """One sentence for each TRL setting that prints training data or sends data off the machine: printed
    completions (with their prompts, the patient notes), uploads to the Hub, experiment trackers."""
    out = []
    if trl.get("log_completions"):
        out.append(
            "trl.log_completions is on: TRL prints every prompt (the patient note included) and completion at "
            "each logging step, and sends them to the trackers in report_to; set trl.log_completions=false"
        )
    if trl.get("push_to_hub") or trl.get("hub_model_id"):
        name = f" as {trl['hub_model_id']}" if trl.get("hub_model_id") else ""
        out.append(
            f"trl.push_to_hub / hub_model_id: the model trained on these notes (and its checkpoints) would be "
            f"uploaded to the Hugging Face Hub{name}; remove them to keep it on this machine"
        )
    report_to = trl.get("report_to")
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    trackers = [str(n) for n in names if str(n).lower() not in LOCAL_TRACKERS]
    if trackers:
        out.append(
            f"trl.report_to names {', '.join(trackers)}: training metrics (and, with log_completions, prompts and "
            "completions) are sent to that tracker, possibly off this machine; set trl.report_to=none to keep "
            "them here"
        )
    return out


def check_vllm(recipe: Recipe) -> None:
    """What TRL's vLLM rollouts cannot honour is refused: TRL's colocated engine loads `model` by its name,
    with `trust_remote_code` but no revision, so any revision but the default would load other files."""
    if recipe.stage != "rl" or not recipe.trl.get("use_vllm"):
        return
    revision = model_init_kwargs(recipe).get("revision")
    if revision not in (None, "main") and recipe.trl.get("vllm_mode", "colocate") == "colocate":
        raise ConfigError(
            f"model_kwargs.revision = {revision!r} with trl.use_vllm: TRL's colocated vLLM engine loads "
            f"{recipe.model!r} at its default revision, not {revision!r}; download that revision into a folder "
            f"(`hf download {recipe.model} --revision {revision} --local-dir DIR`) and give DIR as the model"
        )


MODEL_INIT_KEYS = ("dtype", "torch_dtype", "attn_implementation", "trust_remote_code", "revision")
"""`trl.model_init_kwargs` ehrmind passes to `from_pretrained` (TRL would ignore them: it gets a model)."""

TEMPLATE_RESERVED = ("tokenize", "add_generation_prompt", "continue_final_message", "chat_template", "tools")
"""Arguments of `apply_chat_template` ehrmind sets itself; `chat_template_kwargs` cannot carry them."""


def _mapping(value: Any, where: str, example: str) -> dict[str, Any]:
    """A mapping, or the JSON text of one (TRL accepts both for its *_kwargs fields)."""
    import json

    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, e.g. {example}")
    return dict(value)


def _merge_checked(ours: dict[str, Any], theirs: dict[str, Any], ours_name: str, theirs_name: str) -> dict:
    for key in sorted(set(ours) & set(theirs)):
        if ours[key] != theirs[key]:
            raise ConfigError(
                f"{ours_name}.{key} = {ours[key]!r} but {theirs_name}.{key} = {theirs[key]!r}; set it in one place"
            )
    return {**theirs, **ours}


def model_init_kwargs(recipe: Recipe) -> dict[str, Any]:
    """The keyword arguments ehrmind loads the model with: `model_kwargs` merged with `trl.model_init_kwargs`,
    checked — honoured when loading the model, never silently ignored; a key set in both to different values,
    or one ehrmind does not pass, is refused."""
    given = _mapping(
        recipe.trl.get("model_init_kwargs"), "trl.model_init_kwargs", "{attn_implementation: sdpa}"
    )
    unknown = sorted(set(given) - set(MODEL_INIT_KEYS))
    if unknown:
        raise ConfigError(
            f"trl.model_init_kwargs: {', '.join(unknown)} not supported; ehrmind passes {', '.join(MODEL_INIT_KEYS)}"
        )
    if "torch_dtype" in given:
        given = _merge_checked(
            {"dtype": given.pop("torch_dtype")},
            given,
            "trl.model_init_kwargs (torch_dtype)",
            "trl.model_init_kwargs",
        )
    merged = _merge_checked(
        recipe.model_kwargs.model_dump(exclude_none=True), given, "model_kwargs", "trl.model_init_kwargs"
    )
    if "trust_remote_code" in recipe.trl:  # TRL's own field: the model ehrmind loads must agree with it
        merged = _merge_checked(
            {"trust_remote_code": recipe.trl["trust_remote_code"]}, merged, "trl", "model_kwargs"
        )
    return merged


def template_kwargs(recipe: Recipe) -> dict[str, Any]:
    """The chat template's extra variables: `chat_template_kwargs` merged with `trl.chat_template_kwargs`
    (GRPO), a variable set in both to different values refused."""
    given = _mapping(
        recipe.trl.get("chat_template_kwargs"), "trl.chat_template_kwargs", "{enable_thinking: false}"
    )
    merged = _merge_checked(
        recipe.chat_template_kwargs, given, "chat_template_kwargs", "trl.chat_template_kwargs"
    )
    reserved = sorted(set(merged) & set(TEMPLATE_RESERVED))
    if reserved:
        raise ConfigError(
            f"chat_template_kwargs: {', '.join(reserved)} are set by ehrmind when it renders a prompt; remove them"
        )
    return merged
