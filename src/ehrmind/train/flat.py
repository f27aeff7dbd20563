"""Flat TRL / open-r1 configs, translated into ehrmind recipes with a report of what went where.

TRL's scripts (`trl grpo --config …`) and open-r1's `grpo.py` / `sft.py` read one flat YAML holding the fields of
TRL's `ModelConfig`, `ScriptArguments` and `GRPOConfig` / `SFTConfig` side by side. `translate_flat` maps every
key: model and data keys to ehrmind's own (`model_name_or_path` → `model`, `torch_dtype` → `model_kwargs.dtype`,
`dataset_name` → `data`, …), every field of the stage's TRL config to `trl:`, `ehrmind_<key>` to ehrmind's
`<key>` (e.g. `ehrmind_task: medcalc`). Keys that change what is trained and that ehrmind cannot honour
(`reward_funcs`, TRL's `reward_weights`, `chat_template`, a dataset configuration, quantised loading …) are
refused, naming the key and what to do instead; keys about infrastructure around the run (open-r1's Hub-branch
pushes, W&B names, benchmarks) are reported as ignored. Nothing is dropped silently: each key of the file is
one row of the report, and `drop` (`--drop KEY`) removes a key on purpose, also reported.

The name clash: in a flat TRL config `reward_weights` is TRL's list weighting reward functions. It is refused
(ehrmind's reward is the task's verifier, split into format and correctness components that must sum to it);
ehrmind's own weights are given as `ehrmind_reward_weights: {correct: …, wrong: …, bad_format: …}`.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError
from ehrmind.registry import display_name

if TYPE_CHECKING:
    from ehrmind.train.recipe import Stage

log = logging.getLogger(__name__)

FLAT_MARKERS = ("model_name_or_path", "dataset_name", "model_revision", "torch_dtype")
"""A file with one of these and none of `RECIPE_MARKERS` is a flat TRL config."""
RECIPE_MARKERS = ("stage", "trl", "sft", "rl", "model", "data")

MAPPED: dict[str, tuple[str, str]] = {
    "model_name_or_path": ("model", ""),
    "model_revision": ("model_kwargs.revision", "also the tokenizer's"),
    "dtype": ("model_kwargs.dtype", ""),
    "torch_dtype": ("model_kwargs.dtype", "TRL's older name for dtype"),
    "attn_implementation": ("model_kwargs.attn_implementation", ""),
    "trust_remote_code": ("model_kwargs.trust_remote_code", ""),
    "use_peft": ("lora.enabled", ""),
    "lora_r": ("lora.r", ""),
    "lora_alpha": ("lora.alpha", ""),
    "lora_dropout": ("lora.dropout", ""),
    "lora_target_modules": ("lora.target_modules", ""),
    "dataset_name": ("data", "a Hub id, or a local file / `ehrmind data` snapshot"),
    "dataset_train_split": ("split", ""),
    "output_dir": ("output_dir", ""),
    "seed": ("seed", ""),
    "system_prompt": ("task_options.system_prompt", "replaces the task's system prompt"),
    "chat_template_kwargs": ("chat_template_kwargs", "used wherever ehrmind renders a prompt, and by TRL"),
    "model_init_kwargs": ("trl.model_init_kwargs", "passed to from_pretrained by ehrmind"),
    "max_prompt_length": (
        "max_prompt_tokens",
        "removed from TRL's GRPOConfig; longer prompts are dropped and counted, never truncated",
    ),
    "max_seq_length": ("trl.max_length", "TRL's older name for max_length"),
    "warmup_ratio": (
        "trl.warmup_steps",
        "removed in transformers 5, whose warmup_steps takes a ratio in [0, 1)",
    ),
}
"""Keys with a home in ehrmind's recipe: their key → (our dotted key, note)."""

_REWARDS = "ehrmind rewards a completion with the task's own verifier (format_reward + correctness_reward)"
_DATASET_CONFIG = (
    "ehrmind loads a Hub dataset's default configuration; save the configuration you want to a file "
    "(`ehrmind data`) and give that file as dataset_name"
)
_LORA = "ehrmind's LoRA has r, alpha, dropout and target_modules only"
REFUSED: dict[str, str] = {
    "reward_funcs": f"{_REWARDS}; remove the key",
    "reward_weights": (
        "in a TRL config this weights reward_funcs; ehrmind's reward is the verifier's, weighted by "
        "ehrmind_reward_weights: {correct, wrong, bad_format}"
    ),
    "chat_template": (
        "ehrmind renders prompts with the model's own chat template; save the tokenizer with this template "
        "(tokenizer.chat_template = …; save_pretrained) and give that folder as model_name_or_path"
    ),
    "dataset_config": _DATASET_CONFIG,
    "dataset_configs": _DATASET_CONFIG,
    "dataset_mixture": "ehrmind trains on one dataset; combine the rows into one file first",
    "dataset_prompt_column": "ehrmind builds prompts from the task's own fields (ehrmind_task)",
    "dataset_streaming": "ehrmind reads the whole training set before training",
    "load_in_8bit": "quantised loading is not supported by ehrmind's trainer",
    "load_in_4bit": "quantised loading is not supported by ehrmind's trainer",
    "use_rslora": _LORA,
    "use_dora": _LORA,
    "lora_modules_to_save": _LORA,
    "lora_target_parameters": _LORA,
    "lora_task_type": f"{_LORA} (task type CAUSAL_LM)",
}
"""Keys ehrmind cannot honour: refused unless they hold TRL's (or open-r1's) default, which changes nothing."""

OPEN_R1_DEFAULTS: dict[str, Any] = {"dataset_prompt_column": "prompt", "dataset_configs": None}
"""Defaults of open-r1's own fields among `REFUSED` (TRL's come from its dataclasses)."""

_OPEN_R1_REWARD = "a parameter of open-r1's reward functions, which ehrmind does not use"
_HUB_BRANCH = "open-r1's Hub-branch push is not run (TRL's push_to_hub is honoured)"
_WANDB = "open-r1's W&B naming is not applied; set WANDB_ENTITY / WANDB_PROJECT (TRL's report_to is honoured)"
IGNORED: dict[str, str] = {
    "num_processes": "an accelerate option: `accelerate launch --num_processes N -m ehrmind …`",
    "dataset_test_split": "ehrmind sft / rl train only; evaluate with `ehrmind eval`",
    "dataset_num_proc": "ehrmind builds its rows in one process",
    "benchmarks": "open-r1's post-training benchmarks are not run; use `ehrmind eval`",
    "callbacks": "open-r1's callbacks are not run",
    "hub_model_revision": _HUB_BRANCH,
    "overwrite_hub_revision": _HUB_BRANCH,
    "push_to_hub_revision": _HUB_BRANCH,
    "wandb_entity": _WANDB,
    "wandb_project": _WANDB,
    "wandb_run_group": _WANDB,
    "wandb_log_unique_prompts": _WANDB,
    "num_completions_to_print": "open-r1's console printing of completions",
    "overwrite_output_dir": (
        "removed in transformers 5; ehrmind resumes from the last checkpoint in output_dir (delete it to start "
        "over)"
    ),
    "vllm_device": "removed from TRL (vLLM placement is vllm_mode)",
    "ignore_bias_buffers": "a DDP option of TRL's scripts; ehrmind's models have no bias buffers to skip",
    **{
        k: _OPEN_R1_REWARD
        for k in (
            "cosine_min_value_wrong",
            "cosine_max_value_wrong",
            "cosine_min_value_correct",
            "cosine_max_value_correct",
            "cosine_max_len",
            "repetition_n_grams",
            "repetition_max_penalty",
            "code_language",
            "code_eval_test_batch_size",
            "parallel_code_exec_per_proc",
            "e2b_router_url",
            "morph_router_url",
            "code_provider",
            "ioi_provider",
        )
    },
}
"""Keys about the infrastructure around a run, reported as ignored whatever their value."""

NOT_PREFIXABLE = ("stage", "trl")
"""ehrmind keys that `ehrmind_<key>` cannot set: the stage comes from the command, TRL fields go bare."""


@dataclass
class KeyMapping:
    theirs: str
    ours: str | None
    """Our dotted key; None when the key is ignored, dropped or refused."""
    status: str
    """mapped, trl, ignored, dropped or refused."""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Translation:
    source: str
    stage: str
    recipe: dict[str, Any]
    """The ehrmind recipe as a mapping (validated by `load_recipe` / `validate_recipe`)."""
    keys: list[KeyMapping] = field(default_factory=list)
    """One row per key of the flat file (and one for a task given on the command line)."""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "stage": self.stage, "keys": [k.to_dict() for k in self.keys]}


class TranslationError(ConfigError):
    """Keys of a flat config that cannot be translated. The message names every key first (a long list of
    reasons may be cut); `translation.keys` holds every row, the refused ones with their reasons."""

    def __init__(self, translation: Translation, problems: list[tuple[str, str]]):
        self.translation, self.problems = translation, problems
        super().__init__(
            f"{translation.source} (a flat TRL config): cannot translate "
            f"{', '.join(display_name(k) for k, _ in problems)}. "
            + "; ".join(f"{display_name(k)}: {reason}" for k, reason in problems)
            + ". Remove these keys, or translate with `ehrmind import-recipe … --drop KEY`"
        )


def is_flat(data: dict[str, Any]) -> bool:
    """A flat TRL / open-r1 config rather than an ehrmind recipe."""
    return any(k in data for k in FLAT_MARKERS) and not any(k in data for k in RECIPE_MARKERS)


def _fields(cls: type) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _default(f: Any) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _set(recipe: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = recipe
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def _get(recipe: dict[str, Any], dotted: str) -> Any:
    node: Any = recipe
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return dataclasses.MISSING
        node = node[p]
    return node


def translate_flat(
    data: dict[str, Any],
    *,
    stage: Stage,
    task: str | None = None,
    drop: Sequence[str] = (),
    source: str = "config",
) -> Translation:
    """The ehrmind recipe for a flat TRL / open-r1 config, and one `KeyMapping` per key.

    Refused and unknown keys are collected and raised together as one ConfigError naming each of them.
    `task` (or an `ehrmind_task:` key) is required: a TRL config does not say how to prompt and verify."""
    from trl import ModelConfig, ScriptArguments

    from ehrmind.train.recipe import Recipe, trl_config_class

    t = _Translator(
        stage,
        trl_config_class(stage),
        trl_config_class("sft" if stage == "rl" else "rl"),
        {**_fields(ModelConfig), **_fields(ScriptArguments)},
        [k for k in Recipe.model_fields if k not in NOT_PREFIXABLE],
    )
    unknown_drop = sorted(set(drop) - set(data))
    if unknown_drop:
        raise ConfigError(f"{source}: --drop {', '.join(unknown_drop)}: no such key in the file")
    t.refuse_many_unknown(data, drop, source)
    for key, value in data.items():
        if key in drop:
            t.keys.append(KeyMapping(key, None, "dropped", "--drop"))
        else:
            t.translate(key, value)
    t.add_task(task)
    t.check_required()
    translation = Translation(source=source, stage=stage, recipe=t.recipe, keys=t.keys)
    if t.problems:
        raise TranslationError(translation, t.problems)
    return translation


_NULL = "null: ehrmind's default"

MAX_UNKNOWN = 20
"""More unknown keys than this and the file is refused at once, naming the first few: it is not a TRL config
(a report row and a closest-key search for each of 60,000 keys took minutes)."""

_VALUE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "warmup_ratio": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "must be a number in [0, 1)"),
    "chat_template_kwargs": (
        lambda v: isinstance(v, dict),
        "must be a mapping, e.g. {enable_thinking: false}",
    ),
}
"""`MAPPED` keys whose value is checked: key → (test, reason when it fails)."""

_REQUIRED: tuple[tuple[str, str], ...] = (
    ("model", "model_name_or_path"),
    ("data", "dataset_name"),
    ("output_dir", "output_dir"),
)
"""ehrmind keys a translated recipe must have, and the flat key that gives each."""


class _Translator:
    """The recipe being built from a flat config, its report rows (`keys`) and the problems found."""

    def __init__(
        self,
        stage: Stage,
        config_cls: type,
        other_cls: type,
        script_fields: dict[str, Any],
        prefixable: list[str],
    ):
        self.stage, self.config_cls, self.other_cls = stage, config_cls, other_cls
        self.trl_fields, self.other_fields = _fields(config_cls), _fields(other_cls)
        self.script_fields = script_fields
        self.prefixable = prefixable  # ehrmind's keys that `ehrmind_<key>` may set
        self.recipe: dict[str, Any] = {"stage": stage}
        self.keys: list[KeyMapping] = []
        self.problems: list[tuple[str, str]] = []  # (key, reason)

    def is_known(self, key: Any) -> bool:
        """A key `translate` has a rule for (every other one is refused as unknown)."""
        return isinstance(key, str) and (
            key.startswith("ehrmind_")
            or any(key in known for known in (MAPPED, IGNORED, REFUSED, self.trl_fields, self.script_fields))
            or key in self.other_fields
        )

    def refuse_many_unknown(self, data: dict[str, Any], drop: Sequence[str], source: str) -> None:
        """A ConfigError naming the first few unknown keys when there are more than MAX_UNKNOWN."""
        unknown = [k for k in data if k not in drop and not self.is_known(k)]
        if len(unknown) > MAX_UNKNOWN:
            first = ", ".join(display_name(k, 40) for k in unknown[:5])
            raise ConfigError(
                f"{source}: {len(unknown):,} keys are not fields of TRL's {self.config_cls.__name__}, ModelConfig, "
                f"ScriptArguments or open-r1's configs (the first: {first}); is it a flat TRL config?"
            )

    def translate(self, key: str, value: Any) -> None:
        """One key of the flat file, by the first kind it is, in this order."""
        if not isinstance(key, str):
            self._refuse(repr(key), "not a key name (keys are text)")
        elif key.startswith("ehrmind_"):
            self._ehrmind_key(key, value)
        elif key == "reward_weights":
            self._refuse(key, REFUSED[key])
        elif key in MAPPED:
            self._mapped_key(key, value)
        elif key in IGNORED:
            self.keys.append(KeyMapping(key, None, "ignored", IGNORED[key]))
        elif key in REFUSED:
            self._refused_key(key, value)
        elif key in self.trl_fields:
            self._put(key, f"trl.{key}", value, "trl", f"{self.config_cls.__name__} field")
        elif key in self.script_fields:
            self._script_key(key, value)
        elif key in self.other_fields:
            self._refuse(key, f"a {self.other_cls.__name__} field; this is a {self.stage} run")
        else:
            self._unknown_key(key)

    # -------------------------------------------------------------------------------- kinds of keys

    def _ehrmind_key(self, key: str, value: Any) -> None:
        """`ehrmind_<key>`: ehrmind's own `<key>` (null keeps ehrmind's default)."""
        ours = key.removeprefix("ehrmind_")
        if ours not in self.prefixable:
            close = difflib.get_close_matches(ours, self.prefixable, n=1)
            hint = f"; did you mean ehrmind_{close[0]}?" if close else ""
            self._refuse(key, f"ehrmind has no key {ours!r}{hint}")
        elif value is None:
            self.keys.append(KeyMapping(key, ours, "ignored", _NULL))
        else:
            self._put(key, ours, value, "mapped", "ehrmind's own key")

    def _mapped_key(self, key: str, value: Any) -> None:
        """A key with a home in ehrmind's recipe (`MAPPED`), when its value is valid there."""
        ours, note = MAPPED[key]
        problem = self._mapped_problem(key, value)
        if problem:
            self._refuse(key, problem)
        elif value is None:
            self.keys.append(KeyMapping(key, ours, "ignored", _NULL))
        else:
            self._put(key, ours, value, "mapped", note)

    def _mapped_problem(self, key: str, value: Any) -> str | None:
        """Why a `MAPPED` key's value cannot be used in this run, if it cannot."""
        if key == "max_seq_length" and "max_length" not in self.trl_fields:
            return f"an SFT field; this is a {self.stage} run"
        test, reason = _VALUE_CHECKS.get(key, (None, ""))
        return reason if test is not None and not test(value) else None

    def _refused_key(self, key: str, value: Any) -> None:
        """A key ehrmind cannot honour (`REFUSED`): ignored when it holds its default, else refused."""
        f = self.script_fields.get(key)
        default = _default(f) if f is not None else OPEN_R1_DEFAULTS.get(key, dataclasses.MISSING)
        if value == default or value is None:
            self.keys.append(
                KeyMapping(key, None, "ignored", f"{value!r} is the default: nothing to translate")
            )
        else:
            self._refuse(key, REFUSED[key])

    def _script_key(self, key: str, value: Any) -> None:
        """Another field of TRL's ModelConfig / ScriptArguments: ignored when it holds TRL's default."""
        if value == _default(self.script_fields[key]):
            self.keys.append(
                KeyMapping(key, None, "ignored", f"{value!r} is TRL's default: nothing to translate")
            )
        else:
            self._refuse(
                key, "a field of TRL's ModelConfig / ScriptArguments that ehrmind does not translate"
            )

    def _unknown_key(self, key: str) -> None:
        """A key of no known config: refused, with the closest known key as a hint."""
        known = [*MAPPED, *IGNORED, *REFUSED, *self.trl_fields, *self.script_fields]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self._refuse(
            key,
            f"unknown key (not a field of TRL's {self.config_cls.__name__}, ModelConfig, ScriptArguments or "
            f"open-r1's configs){hint}",
        )

    # -------------------------------------------------------------------------------- the recipe as a whole

    def add_task(self, task: str | None) -> None:
        """The task given on the command line (it must agree with `ehrmind_task`); one there must be."""
        if task is not None:
            if self.recipe.get("task", task) != task:
                self.problems.append(
                    ("--task", f"{task!r}, but ehrmind_task is {self.recipe['task']!r}; keep one")
                )
            else:
                self.recipe["task"] = task
                self.keys.append(KeyMapping("--task", "task", "mapped", "from the command line"))
        if "task" not in self.recipe:
            self.problems.append(
                ("task", "missing: say which ehrmind task this trains (--task T, or ehrmind_task: T)")
            )

    def check_required(self) -> None:
        """A problem for each key ehrmind needs that the file does not give."""
        for required, theirs in _REQUIRED:
            if required not in self.recipe:
                self.problems.append((theirs, f"missing: ehrmind needs it ({required})"))

    # -------------------------------------------------------------------------------- rows

    def _put(self, theirs: str, ours: str, value: Any, status: str, note: str = "") -> None:
        """Set `ours` in the recipe, unless another key set it (or a section holding it, or a key inside it)
        to something else already (refused)."""
        before = _get(self.recipe, ours)
        if before is not dataclasses.MISSING and before != value:
            self._refuse(theirs, f"{self._setter(ours)} sets {ours} to {before!r} already; keep one of them")
            return
        parts = ours.split(".")
        for i in range(1, len(parts)):  # `ehrmind_lora: 8` then `lora_r: 4`
            parent = ".".join(parts[:i])
            held = _get(self.recipe, parent)
            if held is not dataclasses.MISSING and not isinstance(held, dict):
                self._refuse(
                    theirs, f"{self._setter(parent)} sets {parent} to {held!r}, not a mapping; keep one"
                )
                return
        _set(self.recipe, ours, value)
        self.keys.append(KeyMapping(theirs, ours, status, note))

    def _setter(self, ours: str) -> str:
        """The key of the file that set `ours`, a section holding it, or a key inside it."""
        return next(
            (
                k.theirs
                for k in self.keys
                if k.ours
                and (k.ours == ours or k.ours.startswith(ours + ".") or ours.startswith(k.ours + "."))
            ),
            "another key",
        )

    def _refuse(self, key: str, reason: str) -> None:
        self.keys.append(KeyMapping(key, None, "refused", reason))
        self.problems.append((key, reason))


def read_flat(
    path: str | Path, *, stage: Stage, task: str | None = None, drop: Sequence[str] = ()
) -> Translation:
    """Read a flat TRL / open-r1 YAML (includes merged) and translate it; a ConfigError if it is already an
    ehrmind recipe."""
    from ehrmind.train.recipe import _read_yaml

    raw = _read_yaml(Path(path))
    if not is_flat(raw):
        raise ConfigError(
            f"{path} is not a flat TRL config (it has no model_name_or_path / dataset_name, or it has ehrmind "
            "keys such as stage, trl, model, data): use it as an ehrmind recipe directly"
        )
    return translate_flat(raw, stage=stage, task=task, drop=drop, source=str(path))


def write_recipe(translation: Translation, out: str | Path, *, overwrite: bool = False) -> Path:
    """Validate the translated recipe (TRL fields included) and write it as YAML, headed by a comment naming
    the flat file, every key left out of it (ignored or dropped) with the reason, and a warning for each
    setting passed through that prints notes or sends data off the machine (also logged, as a run of the
    recipe will at its start)."""
    import yaml

    from ehrmind.io import atomic_write_text
    from ehrmind.train.recipe import privacy_warnings, validate_recipe

    path = Path(out)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; choose another --out, or --overwrite to replace it")
    validate_recipe(translation.recipe, f"{translation.source} (translated)")
    left_out = [k for k in translation.keys if k.ours is None or k.status == "ignored"]
    warnings = privacy_warnings(translation.recipe.get("trl") or {})
    for warning in warnings:
        log.warning("%s", warning)
    header = [
        f"# ehrmind {translation.stage} recipe translated by `ehrmind import-recipe` from {translation.source}",
        *(f"# WARNING: {w}" for w in warnings),
        *(["# not translated:"] if left_out else []),
        *(f"#   {k.theirs}: {k.status} — {k.note}" for k in left_out),
    ]
    body = yaml.safe_dump(translation.recipe, sort_keys=False, allow_unicode=True)
    atomic_write_text(path, "\n".join(header) + "\n" + body)
    return path
