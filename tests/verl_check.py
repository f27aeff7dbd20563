"""Run by the verl venv's Python (tests/test_verl.py): verl's own classes on an `ehrmind export-verl` folder.

1. compose the launch script's overrides against verl's own `ppo_trainer` config (an unknown key fails),
2. load train.parquet and val.parquet with verl's dataset factory (`RLHFDataset`) under that data config,
3. score completions with the reward manager verl's trainer loads from that config (naive + our
   compute_score), and
4. with a prefill, build the rollout prompt with ehrmind's agent loop.

Usage: python verl_check.py EXPORT_DIR TOKENIZER_DIR CASES.json  → one JSON object on stdout's last line.
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


def main(export: Path, tokenizer_dir: str, cases_file: Path) -> dict:
    import numpy as np
    import torch
    import verl
    from hydra import compose, initialize_config_dir
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.trainer.ppo.utils import create_rl_dataset

    overrides = script_overrides((export / "run_verl.sh").read_text(), tokenizer_dir)
    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)
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
    result = main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
    print(json.dumps(result))
