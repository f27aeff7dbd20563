"""Run by the verl venv's Python (tests/test_verl.py): what verl's trainer leaves at a save step, on CPU.

The actor is wrapped in FSDP as verl's default `actor.strategy: fsdp` wraps it (a one-process gloo group, the
device mesh verl's `create_device_mesh` builds, named `fsdp`) and saved by verl's own `FSDPCheckpointManager`
into CHECKPOINTS/global_step_STEP/actor; `latest_checkpointed_iteration.txt` is written as the trainer writes it.
The weights are the model's plus 0.01 (a trained model differs from its start), and are also saved, plain, to
REFERENCE for the test to compare the merged folder with.

Usage: python verl_checkpoint.py MODEL_DIR CHECKPOINTS STEP REFERENCE.pt
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(model_dir: str, checkpoints: Path, step: int, reference: Path) -> None:
    import torch
    import torch.distributed as dist
    from omegaconf import OmegaConf
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("MASTER_PORT", "29533"))
    dist.init_process_group("gloo", rank=0, world_size=1)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, reference)
    mesh = init_device_mesh("cpu", (1,), mesh_dim_names=["fsdp"])  # verl's mesh, on the CPU
    wrapped = FSDP(model, device_id=torch.device("cpu"), device_mesh=mesh, use_orig_params=False)
    manager = FSDPCheckpointManager(
        wrapped,
        None,
        None,
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        checkpoint_config=OmegaConf.create({"save_contents": ["model"], "load_contents": ["model"]}),
    )
    manager.save_checkpoint(str(checkpoints / f"global_step_{step}" / "actor"), global_step=step)
    (checkpoints / "latest_checkpointed_iteration.txt").write_text(str(step))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
