"""Run by the verl venv's Python (tests/test_verl.py): verl's own classes on an `ehrmind export-verl` folder.

1. compose the launch script's overrides against verl's own `ppo_trainer` config (an unknown key fails),
2. load train.parquet and val.parquet with verl's dataset factory (`RLHFDataset`) under that data config,
3. score completions with the reward manager verl's trainer loads from that config (naive + our
   compute_score), and
4. with a prefill, build the rollout prompt with ehrmind's agent loop.

Usage: python verl_check.py EXPORT_DIR TOKENIZER_DIR CASES.json  → one JSON object on stdout's last line.
       python verl_check.py --config EXPORT_DIR MODEL_DIR            → only the config checks below.

The config checks (both modes): every override key exists in verl's composed `ppo_trainer` config (keys added
with `++` under an existing mapping); verl's own `validate_config` (the trainer's first step) passes; the
actor, optimizer and algorithm sections build into verl's config dataclasses; and the learning rate of each
trainer step, from verl's own FSDP scheduler on verl's own optimizer, is reported with the optimizer's
settings, for the test to compare with TRL's.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace


def script_overrides(text: str, model: str) -> list[str]:
    body = text.split("verl.trainer.main_ppo", 1)[1].replace("\\\n", " ").replace("$MODEL", model)
    return [a for a in shlex.split(body) if "=" in a and not a.startswith("$")]


def compose_config(overrides: list[str]):
    import verl
    from hydra import compose, initialize_config_dir

    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def unknown_keys(overrides: list[str]) -> list[str]:
    """Override keys verl's default config does not have (for `++key`, its parent must exist)."""
    from omegaconf import OmegaConf

    default = compose_config([])
    missing = []
    for item in overrides:
        key = item.split("=", 1)[0]
        added = key.startswith("++")
        parent, _, leaf = key.lstrip("+").rpartition(".")
        node = OmegaConf.select(default, parent) if parent else default
        if node is None or (not added and leaf not in list(node.keys())):  # keys() holds ??? values too
            missing.append(key)
    return missing


def config_check(export: Path, model_dir: str) -> tuple[object, dict]:
    """The composed config and what the checks found (see the module docstring)."""
    from types import SimpleNamespace

    import torch
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.workers.config.optimizer import build_optimizer
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    overrides = script_overrides((export / "run_verl.sh").read_text(), model_dir)
    cfg = compose_config(overrides)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    omega_conf_to_dataclass(cfg.algorithm)
    optim = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor.optim)
    optim.total_training_steps = cfg.trainer.total_training_steps  # as verl's trainer sets it
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(2))], optim)
    scheduler = FSDPEngine._build_lr_scheduler(SimpleNamespace(optimizer_config=optim, rank=1), optimizer)
    lrs = []
    for _ in range(cfg.trainer.total_training_steps):  # the rate each trainer step's optimizer step uses
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    group = optimizer.param_groups[0]
    rollout_is = cfg.algorithm.rollout_correction.rollout_is
    threshold = None
    if rollout_is:
        from verl.trainer.ppo.rollout_corr_helper import _parse_rollout_is_threshold

        threshold = list(_parse_rollout_is_threshold(cfg.algorithm.rollout_correction.rollout_is_threshold))
    return cfg, {
        "unknown_keys": unknown_keys(overrides),
        "lrs": lrs,
        "optimizer": {
            "class": type(optimizer).__name__,
            "lr": group["initial_lr"],
            "betas": list(group["betas"]),
            "eps": group["eps"],
            "weight_decay": group["weight_decay"],
        },
        "rollout_is": rollout_is,
        "rollout_is_threshold": threshold,
        "use_kl_loss": cfg.actor_rollout_ref.actor.use_kl_loss,
        "default_local_dir": cfg.trainer.default_local_dir,
    }


def main(export: Path, tokenizer_dir: str, cases_file: Path) -> dict:
    import numpy as np
    import torch
    import verl
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.trainer.ppo.utils import create_rl_dataset

    cfg, checks = config_check(export, tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    train = create_rl_dataset(cfg.data.train_files, cfg.data, tokenizer, None, is_train=True)
    val = create_rl_dataset(cfg.data.val_files, cfg.data, tokenizer, None, is_train=False)
    items = {str(train[i]["extra_info"]["id"]): train[i] for i in range(len(train))}

    manager = load_reward_manager(cfg, tokenizer)
    cases = json.loads(cases_file.read_text())
    scores = []
    for case in cases:
        item = items[case["id"]]
        prompt = tokenizer.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=True)
        prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
        response = tokenizer.encode(case["completion"], add_special_tokens=False) or [tokenizer.pad_token_id]
        ids = torch.tensor([prompt + response])
        data = DataProto.from_dict(
            tensors={
                "prompts": torch.tensor([prompt]),
                "responses": torch.tensor([response]),
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
            },
            non_tensors={
                k: np.array([item[k]], dtype=object) for k in ("data_source", "reward_model", "extra_info")
            },
        )
        result = manager.loop.run_until_complete(manager.run_single(data))
        scores.append(result["reward_score"])

    out = {
        **checks,
        "verl": verl.__version__,
        "reward_manager": type(manager).__name__,
        "n_train": len(train),
        "n_val": len(val),
        "train_ids": sorted(items),
        "val_ids": sorted(str(val[i]["extra_info"]["id"]) for i in range(len(val))),
        "scores": scores,
        "max_prompt_length": cfg.data.max_prompt_length,
        "rollout_n": cfg.actor_rollout_ref.rollout.n,
    }
    if (export / "agent_loops.yaml").exists():
        out["prefill_prompt"] = prefill_prompt(cfg, tokenizer, next(iter(items.values())))
    return out


def prefill_prompt(cfg, tokenizer, item) -> dict:
    """The prompt ehrmind's agent loop hands to the rollout engine, decoded, with the class verl resolves."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    entry = OmegaConf.load(cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path)[0]
    cls = get_class(entry._target_)
    loop = cls.__new__(cls)  # the loop's own token building, without a rollout server
    loop.tokenizer = tokenizer
    loop.rollout_config = SimpleNamespace(prompt_length=cfg.actor_rollout_ref.rollout.prompt_length)
    loop.continuous_token_builder = create_continuous_token_builder(tokenizer, hf_model_type=None)
    loop.loop = asyncio.new_event_loop()
    loop._prefill = item["extra_info"]["prefill"]
    ids = loop.loop.run_until_complete(loop.ct_build_initial_tokens(list(item["raw_prompt"])))
    return {"name": entry.name, "agent_name": item.get("agent_name"), "text": tokenizer.decode(ids)}


if __name__ == "__main__":
    if sys.argv[1] == "--config":
        result = config_check(Path(sys.argv[2]), sys.argv[3])[1]
    else:
        result = main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
    print(json.dumps(result))
