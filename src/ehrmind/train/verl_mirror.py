"""TRL `GRPOConfig` → verl 0.9.1 Hydra overrides: every setting mirrored, refused with its reason, or — for how
TRL runs rather than what it trains — listed as not carried. Nothing changes silently.

Each `GRPOConfig` field is declared once: in `MIRRORED` (the part of `mirror` that handles it) or in `ENGINE`
(why it does not change the trained model). A test holds the two to `GRPOConfig`'s fields, so a TRL upgrade
that adds one fails until it is placed; docs/verl.md's table lists them all. A refused setting names itself
(`trl.lr_scheduler_type`, `lora`, `model_kwargs.revision`) and what verl would run instead; the export stops
unless `--allow-unmirrored SETTING` accepts that difference, which the launch script's header then records.

Units: TRL counts optimizer steps, verl counts trainer steps (one generation batch each, with
`ppo_epochs` × mini-batches optimizer steps). The two agree, and the schedule maps exactly, when one generation
batch makes one optimizer step (`steps_per_generation` = `gradient_accumulation_steps`, `num_iterations` 1, as
in the shipped recipes).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ehrmind.errors import ConfigError

ACTOR = "actor_rollout_ref.actor."
OPTIM = "actor_rollout_ref.actor.optim."
ROLLOUT = "actor_rollout_ref.rollout."
MODEL = "actor_rollout_ref.model."

NO_DUAL_CLIP = 1e9
"""`actor.clip_ratio_c` when TRL's `delta` is unset: verl's default 3.0 caps the loss of a negative advantage at
3·|A| (dual-clip PPO); TRL caps nothing. (TRL's `delta` is that cap: equal to verl's `clip_ratio_c`.)"""
IS_FLOOR = 1e-30
"""The lower bound verl's IcePop mode needs (`lower_upper`) where TRL's mask has none: below any ratio."""


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A setting verl 0.9.1 cannot run as TRL does."""

    setting: str
    """As the recipe names it: `trl.lr_scheduler_type`, `lora`, `model_kwargs.revision`."""
    why: str
    instead: str
    """What verl runs if the difference is accepted (`--allow-unmirrored`)."""
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The overrides for `instead`."""

    def line(self) -> str:
        return f"{self.setting}: {self.why}; verl runs {self.instead}"


@dataclasses.dataclass(frozen=True)
class Shape:
    """The batch arithmetic, in verl's units."""

    prompts: int
    """Prompts per trainer step (`data.train_batch_size`); × num_generations = TRL's generation batch."""
    updates: int
    """Optimizer steps per generation batch and pass (mini-batches)."""
    passes: int
    """`num_iterations` → `actor.ppo_epochs`."""
    steps_per_epoch: int
    """Trainer steps in one pass over train.parquet (verl drops the last partial batch, as TRL does)."""

    @property
    def optimizer_steps(self) -> int:
        """Optimizer steps per trainer step."""
        return self.updates * self.passes


@dataclasses.dataclass
class Mirror:
    overrides: dict[str, Any]
    refused: list[Refusal]
    not_carried: list[str]
    """Settings the recipe gives that change how TRL runs, not what it trains (`ENGINE`)."""
    total_steps: int
    """verl trainer steps (`trainer.total_training_steps`)."""
    shape: Shape


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What `mirror` reads: the effective TRL settings and the recipe's own training fields."""

    trl: dict[str, Any]
    """The recipe's `trl:` values over GRPOConfig's defaults (`grpo_settings`)."""
    given: frozenset[str]
    """The TRL fields the recipe sets itself."""
    gpus: int
    n_train: int
    seed: int
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """`model_kwargs` merged with `trl.model_init_kwargs` (`recipe.model_init_kwargs`)."""
    lora: dict[str, Any] | None = None
    """The recipe's `lora` when enabled."""


def grpo_defaults() -> dict[str, Any]:
    """GRPOConfig's field defaults (before its `__post_init__`, which resolves a few from others)."""
    from trl import GRPOConfig

    out = {}
    for f in dataclasses.fields(GRPOConfig):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def grpo_settings(trl: dict[str, Any]) -> dict[str, Any]:
    """The recipe's `trl` values over TRL `GRPOConfig`'s defaults (what `ehrmind rl` would run with)."""
    return {**grpo_defaults(), **trl}


# ---------------------------------------------------------------- the parts


def batch_shape(t: dict[str, Any], gpus: int, n_train: int) -> tuple[Shape, dict[str, Any]]:
    """Generation batch, optimizer mini-batches and passes; shapes verl cannot run are errors."""
    g = int(t["num_generations"])
    per_device = int(t["per_device_train_batch_size"])
    accumulation = int(t["gradient_accumulation_steps"])
    world = per_device * gpus
    gen, spg = t.get("generation_batch_size"), t.get("steps_per_generation")
    if gen and spg:
        raise ConfigError("trl.generation_batch_size and trl.steps_per_generation cannot both be set (TRL)")
    if gen and int(gen) % world:
        raise ConfigError(f"trl.generation_batch_size {gen} is not a multiple of {per_device} × {gpus} GPUs")
    steps = int(spg or (int(gen) // world if gen else accumulation))
    completions = world * steps
    if completions % g:
        raise ConfigError(
            f"{completions} completions per generation (per_device_train_batch_size {per_device} × {gpus} GPUs "
            f"× steps_per_generation {steps}) is not a multiple of num_generations {g}; change --gpus or the recipe"
        )
    if steps % accumulation:
        raise ConfigError(
            f"trl.steps_per_generation {steps} is not a multiple of gradient_accumulation_steps {accumulation}: "
            "an optimizer step would span two generation batches, which verl cannot run"
        )
    if (world * accumulation) % g:
        raise ConfigError(
            f"an optimizer step's {world * accumulation} completions (per_device × GPUs × "
            f"gradient_accumulation_steps) do not hold whole groups of num_generations {g}"
        )
    prompts, updates = completions // g, steps // accumulation
    if n_train < prompts:
        raise ConfigError(
            f"train.parquet holds {n_train} prompts, fewer than one step's {prompts} (data.train_batch_size): "
            "verl would train nothing; use more data, a smaller batch or --gpus"
        )
    shape = Shape(prompts, updates, int(t["num_iterations"]), n_train // prompts)
    return shape, {
        "data.train_batch_size": prompts,
        ACTOR + "ppo_mini_batch_size": prompts // updates,
        ACTOR + "ppo_micro_batch_size_per_gpu": per_device,
        ACTOR + "ppo_epochs": shape.passes,
        ROLLOUT + "n": g,
        ROLLOUT + "log_prob_micro_batch_size_per_gpu": per_device,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": per_device,
    }


def training_steps(t: dict[str, Any], shape: Shape, refused: list[Refusal]) -> int:
    """verl trainer steps for TRL's `max_steps` (optimizer steps) or `num_train_epochs`."""
    k = shape.optimizer_steps
    if int(t["max_steps"]) > 0:
        steps = math.ceil(int(t["max_steps"]) / k)
        if steps * k != int(t["max_steps"]):
            refused.append(
                Refusal(
                    "trl.max_steps",
                    f"{t['max_steps']} optimizer steps is not a whole number of verl steps of {k} optimizer steps",
                    f"{steps} steps ({steps * k} optimizer steps)",
                )
            )
        return steps
    return max(1, math.ceil(float(t["num_train_epochs"]) * shape.steps_per_epoch))


HF_SCHEDULES = {"constant", "constant_with_warmup", "cosine", "cosine_with_min_lr"}
"""transformers schedules verl's FSDP optimizer (constant, cosine with warmup and min_lr_ratio) reproduces."""


def schedule(t: dict[str, Any], shape: Shape, total: int, refused: list[Refusal]) -> dict[str, Any]:
    """Learning rate and schedule: transformers' `get_scheduler` as the HF Trainer calls it, over TRL's optimizer
    steps, mirrored onto verl's `actor.optim` (`lr_scheduler_type` constant | cosine)."""
    name = str(getattr(t["lr_scheduler_type"], "value", t["lr_scheduler_type"]))
    kwargs = dict(t.get("lr_scheduler_kwargs") or {})
    k = shape.optimizer_steps
    total_optimizer = total * k
    w = float(t["warmup_steps"] or 0)
    warmup_optimizer = (
        int(w) if w >= 1 else math.ceil(total_optimizer * w)
    )  # TrainingArguments.get_warmup_steps
    warmup = math.ceil(warmup_optimizer / k)
    lr = float(t["learning_rate"])
    o: dict[str, Any] = {OPTIM + "lr": lr}
    cosine = {
        OPTIM + "lr_scheduler_type": "cosine",
        OPTIM + "lr_warmup_steps": warmup,
        OPTIM + "min_lr_ratio": 0.0,
    }
    if name == "constant":  # transformers' plain constant schedule ignores warmup_steps
        return {**o, OPTIM + "lr_scheduler_type": "constant", OPTIM + "lr_warmup_steps": 0}
    if name not in HF_SCHEDULES:
        refused.append(
            Refusal(
                "trl.lr_scheduler_type",
                f"{name!r} has no verl counterpart (verl 0.9.1's FSDP optimizer has constant and cosine)",
                f"cosine decay to 0 with the same warmup ({warmup} steps)",
                cosine,
            )
        )
        return o
    known = {"cosine": {"num_cycles"}, "cosine_with_min_lr": {"num_cycles", "min_lr_rate", "min_lr"}}
    unknown = set(kwargs) - known.get(name, set())
    if unknown:
        raise ConfigError(
            f"trl.lr_scheduler_kwargs {sorted(unknown)}: not mirrored for {name!r}; remove them"
        )
    if name == "constant_with_warmup":
        o.update({OPTIM + "lr_scheduler_type": "constant", OPTIM + "lr_warmup_steps": warmup})
    else:
        min_ratio = float(kwargs.get("min_lr_rate", float(kwargs.get("min_lr", 0.0)) / lr))
        o.update(cosine)
        o.update(
            {OPTIM + "min_lr_ratio": min_ratio, OPTIM + "num_cycles": float(kwargs.get("num_cycles", 0.5))}
        )
    if k > 1:
        refused.append(
            Refusal(
                "trl.lr_scheduler_type",
                f"verl steps its schedule once per generation batch ({k} optimizer steps), TRL once per "
                f"optimizer step, so the {name} schedule (warmup {warmup_optimizer}) would move in steps of {k}",
                f"{name} over {total} steps with {warmup} warmup steps",
                {k2: v for k2, v in o.items() if k2 != OPTIM + "lr"},
            )
        )
        return {OPTIM + "lr": lr}
    return o


def optimizer(t: dict[str, Any], refused: list[Refusal]) -> dict[str, Any]:
    """AdamW as the HF Trainer builds it (torch's AdamW, fused or not: the same update)."""
    name = str(getattr(t["optim"], "value", t["optim"]))
    if name not in ("adamw_torch", "adamw_torch_fused"):
        refused.append(Refusal("trl.optim", f"{name!r} is not mirrored (verl builds torch AdamW)", "AdamW"))
    for key in ("optim_args", "optim_target_modules"):
        if t.get(key):
            refused.append(Refusal(f"trl.{key}", "not mirrored (verl builds plain AdamW)", "plain AdamW"))
    decay = float(t["weight_decay"])
    if decay:
        refused.append(
            Refusal(
                "trl.weight_decay",
                "the HF Trainer exempts biases and norm weights from weight decay; verl decays every parameter",
                f"weight decay {decay:g} on every parameter",
                {OPTIM + "weight_decay": decay},
            )
        )
    o: dict[str, Any] = {
        OPTIM + "optimizer": "AdamW",
        OPTIM + "weight_decay": 0.0,
        OPTIM + "betas": [float(t["adam_beta1"]), float(t["adam_beta2"])],
        OPTIM + "clip_grad": float(t["max_grad_norm"]),
    }
    if float(t["adam_epsilon"]) != 1e-8:  # torch AdamW's default, which verl leaves in place
        o[OPTIM + "override_optimizer_config"] = {"eps": float(t["adam_epsilon"])}
    return o


def advantages(t: dict[str, Any], refused: list[Refusal]) -> dict[str, Any]:
    """Group-relative advantages: (reward − group mean), divided by the group's std unless `scale_rewards` is none."""
    scale = {True: "group", False: "none"}.get(t["scale_rewards"], t["scale_rewards"])
    if scale == "batch":
        refused.append(
            Refusal(
                "trl.scale_rewards",
                "'batch' divides by the std of the whole batch's rewards; verl's GRPO divides by each group's std "
                "or by nothing (and reinforce_plus_plus_baseline whitens group-centred scores over tokens, "
                "another quantity)",
                "group std (norm_adv_by_std_in_grpo=true)",
                {"algorithm.norm_adv_by_std_in_grpo": True},
            )
        )
    if t["multi_objective_aggregation"] != "sum_then_normalize":
        refused.append(
            Refusal(
                "trl.multi_objective_aggregation",
                f"{t['multi_objective_aggregation']!r} normalises the format and correctness rewards apart; "
                "verl gets one reward, their sum (compute_score)",
                "sum_then_normalize",
            )
        )
    return {
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": scale == "group",
        "algorithm.use_kl_in_reward": False,
    }


LOSS_AGG = {
    "grpo": "seq-mean-token-mean",
    "sapo": "seq-mean-token-mean",
    "dapo": "token-mean",
    "cispo": "token-mean",
    "dr_grpo": "seq-mean-token-sum-norm",
}
"""TRL `loss_type` → verl `actor.loss_agg_mode` (TRL's dapo/cispo normalise by the optimizer batch's tokens, as
verl's global token-mean; dr_grpo by sequences × max_completion_length)."""


def policy_loss(t: dict[str, Any], refused: list[Refusal]) -> dict[str, Any]:
    """The clipped objective and its aggregation."""
    loss = str(t["loss_type"])
    level = str(t["importance_sampling_level"])
    eps = float(t["epsilon"])
    eps_high = float(t["epsilon_high"] if t["epsilon_high"] is not None else eps)
    o: dict[str, Any] = {ACTOR + "clip_ratio_low": eps, ACTOR + "clip_ratio_high": eps_high}
    if loss not in LOSS_AGG:
        why = (
            "normalises each micro-batch by its own token count; verl normalises the optimizer batch"
            if loss == "bnpo"
            else "has no verl 0.9.1 counterpart"
        )
        refused.append(
            Refusal(
                "trl.loss_type",
                f"{loss!r} {why}",
                "dapo's token-mean",
                {ACTOR + "loss_agg_mode": "token-mean"},
            )
        )
        loss = "dapo"
    o[ACTOR + "loss_agg_mode"] = LOSS_AGG[loss]
    mode = {"sapo": "sapo", "cispo": "cispo"}.get(loss, "vanilla")
    if level == "sequence":
        if loss == "grpo":
            mode = "gspo"  # GSPO: TRL's sequence-level ratio with grpo's aggregation is verl's gspo loss
        else:
            refused.append(
                Refusal(
                    "trl.importance_sampling_level",
                    f"'sequence' with loss_type {loss!r} (verl's gspo loss is the sequence level with grpo's "
                    "per-sequence mean)",
                    "token-level ratios",
                )
            )
    o[ACTOR + "policy_loss.loss_mode"] = mode
    if loss == "dr_grpo":
        o[ACTOR + "loss_scale_factor"] = int(t["max_completion_length"])
    if loss == "sapo":
        o.update(
            {
                ACTOR + "tau_pos": float(t["sapo_temperature_pos"]),
                ACTOR + "tau_neg": float(t["sapo_temperature_neg"]),
            }
        )
    if loss == "cispo":  # TRL caps the ratio at epsilon_high itself, with no lower bound
        if eps_high <= 1:
            raise ConfigError(
                f"trl.epsilon_high {eps_high:g}: cispo caps the ratio at epsilon_high; set it above 1"
            )
        o.update({ACTOR + "clip_ratio_low": 1.0, ACTOR + "clip_ratio_high": eps_high - 1})
    o[ACTOR + "clip_ratio_c"] = float(t["delta"]) if t.get("delta") is not None else NO_DUAL_CLIP
    _refuse_set(
        t,
        refused,
        {
            "top_entropy_quantile": (
                1.0,
                "trains on the high-entropy tokens only; verl trains on every token",
            ),
            "off_policy_mask_threshold": (None, "masks off-policy sequences (OPSM); verl has no such mask"),
            "mask_truncated_completions": (
                False,
                "drops truncated completions from the loss; verl keeps them",
            ),
            "entropy_coef": (
                0.0,
                "TRL's entropy bonus is a per-micro-batch token mean, whatever the loss_type",
            ),
            "use_adaptive_entropy": (False, "verl's entropy coefficient is fixed"),
        },
    )
    o[ACTOR + "entropy_coeff"] = 0.0
    return o


def kl(t: dict[str, Any], shape: Shape, refused: list[Refusal]) -> dict[str, Any]:
    """TRL's KL penalty (k3 to the reference, added to the per-token loss) → verl's KL loss."""
    beta = float(t["beta"] or 0.0)
    kind = "low_var_kl"
    if beta and t["use_bias_correction_kl"]:
        # TRL multiplies the k3 term by π/π_old: its gradient is then k2's (π = π_old), verl's straight-through
        # `+` variant (k3 value, k2 gradient).
        kind = "low_var_kl+"
        if shape.optimizer_steps > 1:
            refused.append(
                Refusal(
                    "trl.use_bias_correction_kl",
                    "TRL weights the KL gradient by π/π_old, which differs from 1 after the first of several "
                    "optimizer steps per generation; verl's low_var_kl+ does not",
                    "low_var_kl+ (exact on the first optimizer step of each generation)",
                )
            )
    _refuse_set(t, refused, {"sync_ref_model": (False, "verl's reference model stays the initial model")})
    return {ACTOR + "use_kl_loss": beta > 0, ACTOR + "kl_loss_coef": beta, ACTOR + "kl_loss_type": kind}


IS_MODES = {
    "token_truncate": "token",
    "sequence_truncate": "sequence",
    "token_mask": "token",
    "sequence_mask": "sequence",
}


def rollout_correction(t: dict[str, Any], refused: list[Refusal]) -> dict[str, Any]:
    """TRL's correction for vLLM's sampling differing from the trained model (on only with `use_vllm`; TRL without
    vLLM samples with the trained model itself) → verl's `algorithm.rollout_correction` (verl always samples
    with vLLM here)."""
    key = "algorithm.rollout_correction."
    if not (t["use_vllm"] and t["vllm_importance_sampling_correction"]):
        return {key + "rollout_is": None}
    mode = str(t["vllm_importance_sampling_mode"])
    high = t.get("vllm_importance_sampling_clip_max")
    high = (
        t.get("vllm_importance_sampling_cap") if t.get("vllm_importance_sampling_cap") is not None else high
    )
    low = t.get("vllm_importance_sampling_clip_min")
    if mode not in IS_MODES or high is None:
        refused.append(
            Refusal(
                "trl.vllm_importance_sampling_mode",
                f"{mode!r} without an upper bound is not mirrored",
                "no correction",
            )
        )
        return {key + "rollout_is": None}
    o = {key + "rollout_is": IS_MODES[mode], key + "bypass_mode": False, key + "rollout_rs": None}
    if mode.endswith("_mask"):  # weights outside [low, high] zeroed: verl's IcePop bounds
        o[key + "rollout_is_threshold"] = f"{float(low) if low is not None else IS_FLOOR:g}_{float(high):g}"
    else:  # clamped: verl's TIS clamps from above only
        o[key + "rollout_is_threshold"] = float(high)
        if low is not None:
            refused.append(
                Refusal(
                    "trl.vllm_importance_sampling_clip_min",
                    "verl's truncated IS weights clamp from above only",
                    "no lower clamp",
                )
            )
    return o


def sampling(t: dict[str, Any], refused: list[Refusal]) -> dict[str, Any]:
    """Generation: the same sampler settings (verl's rollout uses the temperature for the trained log-probs too,
    as TRL does)."""
    _refuse_set(
        t,
        refused,
        {
            "min_p": (None, "verl's rollout has no min_p"),
            "repetition_penalty": (1.0, "verl's rollout has no repetition penalty"),
            "generation_kwargs": (None, "verl's rollout takes no extra sampling arguments"),
            "vllm_structured_outputs_regex": (None, "verl's rollout does not constrain outputs"),
        },
    )
    top_k = int(t["top_k"] or 0)
    o: dict[str, Any] = {
        "data.max_response_length": int(t["max_completion_length"]),
        ROLLOUT + "temperature": float(t["temperature"]),
        ROLLOUT + "top_p": float(t["top_p"]),
        ROLLOUT + "top_k": top_k if top_k > 0 else -1,
        ROLLOUT + "name": "vllm",
        ROLLOUT + "tensor_model_parallel_size": int(t.get("vllm_tensor_parallel_size") or 1),
        ROLLOUT + "gpu_memory_utilization": float(t.get("vllm_gpu_memory_utilization") or 0.3),
    }
    if t.get("vllm_max_model_length"):
        o[ROLLOUT + "max_model_len"] = int(t["vllm_max_model_length"])
    return o


DTYPES = {"float32": "fp32", "bfloat16": "bf16"}


def model(inp: Inputs, refused: list[Refusal]) -> dict[str, Any]:
    """How the trained model is built: its dtype, remote code, LoRA, and TRL's model switches."""
    t = inp.trl
    _refuse_set(
        t,
        refused,
        {
            "disable_dropout": (False, "verl keeps the model's dropout"),
            "cast_lm_head_to_fp32": (False, "not mirrored"),
            "router_aux_loss_coef": (None, "not mirrored (mixture-of-experts routing loss)"),
            "neftune_noise_alpha": (None, "verl adds no embedding noise"),
            "fp16": (False, "verl trains in bf16"),
        },
    )
    trust = bool(inp.model_kwargs.get("trust_remote_code") or t.get("trust_remote_code"))
    o: dict[str, Any] = {
        MODEL + "enable_gradient_checkpointing": bool(t["gradient_checkpointing"]),
        MODEL + "use_liger": bool(t["use_liger_kernel"]),
        MODEL + "trust_remote_code": trust,
        "data.trust_remote_code": trust,
    }
    dtype = inp.model_kwargs.get("dtype")
    if dtype in DTYPES:
        o[ACTOR + "fsdp_config.model_dtype"] = DTYPES[dtype]
    elif dtype not in (None, "auto"):
        refused.append(
            Refusal("model_kwargs.dtype", f"{dtype} weights are not mirrored", "fp32 master weights")
        )
    if inp.model_kwargs.get("revision"):
        refused.append(
            Refusal(
                "model_kwargs.revision",
                "verl loads MODEL as given (download that revision and point MODEL at it)",
                "MODEL's default revision",
            )
        )
    if inp.lora:
        lora = inp.lora
        refused.append(
            Refusal(
                "lora",
                "verl's FSDP LoRA has no dropout and merge_verl.sh is checked on full fine-tuning only",
                f"LoRA r={lora['r']} alpha={lora['alpha']} without dropout",
                {
                    MODEL + "lora_rank": int(lora["r"]),
                    MODEL + "lora_alpha": int(lora["alpha"]),
                    MODEL + "target_modules": lora.get("target_modules") or "all-linear",
                },
            )
        )
    return o


def data_and_saving(inp: Inputs, shape: Shape, total: int) -> dict[str, Any]:
    """Data order, seeds and checkpoints (always one at the last step: `merge_verl.sh` reads it)."""
    t = inp.trl
    k = shape.optimizer_steps
    strategy = str(getattr(t["save_strategy"], "value", t["save_strategy"]))
    if strategy == "steps" and t.get("save_steps"):
        every = float(t["save_steps"])
        every = math.ceil(every * total * k if every < 1 else every)  # a float below 1 is a share (HF)
        save = max(1, math.ceil(every / k))
    elif strategy == "epoch":
        save = shape.steps_per_epoch
    else:
        save = total
    o: dict[str, Any] = {
        "data.shuffle": bool(t["shuffle_dataset"]),
        "data.seed": int(t["data_seed"]) if t.get("data_seed") is not None else inp.seed,
        ROLLOUT + "seed": inp.seed,
        "trainer.save_freq": save,
        "trainer.test_freq": save,
    }
    if t.get("save_total_limit"):
        o["trainer.max_actor_ckpt_to_keep"] = int(t["save_total_limit"])
    return o


def _refuse_set(t: dict[str, Any], refused: list[Refusal], rules: dict[str, tuple[Any, str]]) -> None:
    """Refuse each setting whose value is not the one where TRL and verl agree."""
    for name, (agree, why) in rules.items():
        value = t.get(name)
        if value != agree and not (agree is None and not value):
            refused.append(Refusal(f"trl.{name}", f"{value!r}: {why}", f"{name}={agree!r}"))


# ---------------------------------------------------------------- the one declaration per field


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


MIRRORED: dict[str, tuple[str, ...]] = {
    "batch_shape": _names(
        "per_device_train_batch_size gradient_accumulation_steps steps_per_generation generation_batch_size "
        "num_generations num_iterations"
    ),
    "training_steps": _names("max_steps num_train_epochs"),
    "schedule": _names("learning_rate lr_scheduler_type lr_scheduler_kwargs warmup_steps"),
    "optimizer": _names(
        "optim optim_args optim_target_modules weight_decay adam_beta1 adam_beta2 adam_epsilon max_grad_norm"
    ),
    "advantages": _names("scale_rewards multi_objective_aggregation reward_weights"),
    "policy_loss": _names(
        "loss_type epsilon epsilon_high delta importance_sampling_level sapo_temperature_pos sapo_temperature_neg "
        "vespo_k_pos vespo_lambda_pos vespo_k_neg vespo_lambda_neg top_entropy_quantile off_policy_mask_threshold "
        "mask_truncated_completions entropy_coef use_adaptive_entropy entropy_coef_min entropy_coef_max "
        "entropy_coef_delta entropy_target"
    ),
    "kl": _names("beta use_bias_correction_kl sync_ref_model ref_model_mixup_alpha ref_model_sync_steps"),
    "rollout_correction": _names(
        "use_vllm vllm_importance_sampling_correction vllm_importance_sampling_mode "
        "vllm_importance_sampling_clip_max vllm_importance_sampling_clip_min vllm_importance_sampling_cap"
    ),
    "sampling": _names(
        "max_completion_length temperature top_p top_k min_p repetition_penalty generation_kwargs "
        "vllm_structured_outputs_regex vllm_gpu_memory_utilization vllm_tensor_parallel_size "
        "vllm_max_model_length"
    ),
    "model": _names(
        "gradient_checkpointing use_liger_kernel disable_dropout cast_lm_head_to_fp32 router_aux_loss_coef "
        "neftune_noise_alpha fp16 trust_remote_code model_init_kwargs chat_template_kwargs"
    ),
    "data_and_saving": _names(
        "shuffle_dataset seed data_seed save_strategy save_steps save_total_limit output_dir"
    ),
}
"""The GRPOConfig fields each part of `mirror` reads (the `vespo_*`, `entropy_coef_*`, `ref_model_*` and
`sapo_*` values only act under a loss, entropy or reference mode that is itself mirrored or refused)."""

_PRECISION = (
    "precision and speed: verl computes in bf16 with fp32 master weights, its own kernels and compile"
)
_DIST = "distribution: verl runs its own FSDP workers under Ray (--gpus, trainer.nnodes)"
_VLLM = "how TRL reaches vLLM: verl runs its own vLLM rollout"
_LOG = "logging: verl logs to the console (trainer.logger) and prints no prompt"
_HUB = "the Hub: verl pushes nothing"
_EVAL = "evaluation: ehrmind rl passes no eval set; verl validates greedily on val.parquet"
_SAVE = "checkpoint mechanics: verl saves and resumes its own checkpoints (trainer.resume_mode)"
_LOAD = "data loading: verl's own loader (its order follows data.shuffle and data.seed)"
_INERT = "no effect on GRPO here"

ENGINE: dict[str, str] = {
    **dict.fromkeys(
        _names(
            "bf16 tf32 bf16_full_eval fp16_full_eval use_cpu torch_compile torch_compile_backend torch_compile_mode "
            "liger_kernel_config activation_checkpointing activation_checkpointing_kwargs "
            "gradient_checkpointing_kwargs use_cache torch_empty_cache_steps pad_to_multiple_of "
            "ds3_gather_for_generation cache_implementation use_transformers_continuous_batching "
            "transformers_continuous_batching_config use_transformers_paged full_determinism auto_find_batch_size"
        ),
        _PRECISION,
    ),
    **dict.fromkeys(
        _names(
            "accelerator_config parallelism_config ddp_find_unused_parameters ddp_bucket_cap_mb ddp_broadcast_buffers "
            "ddp_static_graph ddp_backend ddp_timeout fsdp fsdp_config deepspeed local_rank "
            "average_tokens_across_devices"
        ),
        _DIST,
    ),
    **dict.fromkeys(
        _names(
            "vllm_mode vllm_model_impl vllm_enable_sleep_mode vllm_server_base_url vllm_server_host vllm_server_port "
            "vllm_server_timeout vllm_group_port"
        ),
        _VLLM,
    ),
    **dict.fromkeys(
        _names(
            "logging_strategy logging_steps logging_first_step log_on_each_node logging_nan_inf_filter "
            "include_num_input_tokens_seen log_level log_level_replica disable_tqdm report_to run_name project "
            "trackio_space_id trackio_bucket_id trackio_static_space_id log_completions log_multimodal "
            "num_completions_to_print log_unique_prompts log_completions_hub_repo skip_memory_metrics debug"
        ),
        _LOG,
    ),
    **dict.fromkeys(
        _names(
            "push_to_hub hub_token hub_private_repo hub_model_id hub_strategy hub_always_push hub_revision"
        ),
        _HUB,
    ),
    **dict.fromkeys(
        _names(
            "eval_strategy eval_steps eval_delay per_device_eval_batch_size prediction_loss_only eval_on_start "
            "eval_do_concat_batches eval_use_gather_object eval_accumulation_steps include_for_metrics "
            "batch_eval_metrics num_generations_eval load_best_model_at_end metric_for_best_model greater_is_better "
            "do_train do_eval do_predict"
        ),
        _EVAL,
    ),
    **dict.fromkeys(
        _names(
            "save_only_model save_on_each_node enable_jit_checkpoint resume_from_checkpoint ignore_data_skip "
            "restore_callback_states_from_checkpoint"
        ),
        _SAVE,
    ),
    **dict.fromkeys(
        _names(
            "dataloader_drop_last dataloader_num_workers dataloader_pin_memory dataloader_persistent_workers "
            "dataloader_prefetch_factor dataloader_multiprocessing_context dataloader_in_order remove_unused_columns "
            "label_names train_sampling_strategy length_column_name"
        ),
        _LOAD,
    ),
    "label_smoothing_factor": _INERT + " (GRPO computes its own loss)",
    "max_tool_calling_iterations": _INERT + " (ehrmind's tasks give the model no tools)",
}
"""GRPOConfig fields that change how TRL runs, not what it trains; the export lists those a recipe sets."""


def mirror(inp: Inputs) -> Mirror:
    """The verl overrides for a recipe's GRPO settings, what verl cannot run as TRL does, and what is not
    carried. A TRL field neither mirrored nor declared an engine setting is refused if the recipe sets it."""
    t = inp.trl
    refused: list[Refusal] = []
    shape, o = batch_shape(t, inp.gpus, inp.n_train)
    total = training_steps(t, shape, refused)
    o.update(
        {
            "trainer.total_training_steps": total,
            "trainer.total_epochs": math.ceil(total / shape.steps_per_epoch),
        }
    )
    o.update(schedule(t, shape, total, refused))
    o.update(optimizer(t, refused))
    o.update(advantages(t, refused))
    o.update(policy_loss(t, refused))
    o.update(kl(t, shape, refused))
    o.update(rollout_correction(t, refused))
    o.update(sampling(t, refused))
    o.update(model(inp, refused))
    o.update(data_and_saving(inp, shape, total))
    known = {f for fields in MIRRORED.values() for f in fields} | set(ENGINE)
    for name in sorted(inp.given - known):
        refused.append(Refusal(f"trl.{name}", "a TRL setting this export does not know", "verl's default"))
    not_carried = sorted(inp.given & set(ENGINE))
    if inp.model_kwargs.get("attn_implementation"):  # verl picks its own attention kernels
        not_carried.append("model_kwargs.attn_implementation")
    return Mirror(o, refused, not_carried, total, shape)


def accept(m: Mirror, allow: list[str]) -> list[Refusal]:
    """The refusals `allow` accepts, their overrides applied to `m`; any other refusal is a ConfigError naming the
    setting and why, and an `allow` that names no refusal is one too (a typo must not pass)."""
    wanted = {a if "." in a or a == "lora" else f"trl.{a}" for a in allow}
    names = {r.setting for r in m.refused}
    stray = sorted(wanted - names)
    if stray:
        raise ConfigError(
            f"--allow-unmirrored {', '.join(stray)}: nothing to allow"
            + (f" (refused here: {', '.join(sorted(names))})" if names else " (every setting is mirrored)")
        )
    left = [r for r in m.refused if r.setting not in wanted]
    if left:
        raise ConfigError(
            "not mirrored in verl 0.9.1: "
            + "; ".join(r.line() for r in left)
            + f". Change the recipe, or accept with --allow-unmirrored {' --allow-unmirrored '.join(sorted({r.setting for r in left}))}"
        )
    accepted = [r for r in m.refused if r.setting in wanted]
    for r in accepted:
        m.overrides.update(r.overrides)
    return accepted
