"""Configs people already have (issue #14, item 4): the recipe's model block (`model_kwargs`,
`chat_template_kwargs`), flat TRL / open-r1 YAML run by `ehrmind rl` or translated by `ehrmind import-recipe`,
and the model's and data's revisions in every run record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.io import sha256_file
from ehrmind.train.flat import TranslationError, translate_flat
from ehrmind.train.recipe import load_recipe, model_init_kwargs, template_kwargs, trl_kwargs

runner = CliRunner()

# open-r1's recipes/Qwen2.5-1.5B-Instruct/grpo/config_demo.yaml, as people have it (the batch made
# divisible by the group size on one process, the way `accelerate launch` with 7 processes makes it).
OPEN_R1_DEMO = """\
# Model arguments
model_name_or_path: Qwen/Qwen2.5-1.5B-Instruct
model_revision: main
torch_dtype: bfloat16
attn_implementation: flash_attention_2

# Data training arguments
dataset_name: AI-MO/NuminaMath-TIR
dataset_configs:
- all
system_prompt: "You are a helpful AI Assistant that provides well-reasoned and detailed responses."
num_processes: 7

# GRPO trainer config
bf16: true
use_vllm: true
do_eval: false
gradient_accumulation_steps: 16
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: false
hub_model_id: Qwen2.5-1.5B-Open-R1-GRPO
hub_strategy: every_save
learning_rate: 2.0e-05
log_completions: true
log_level: info
logging_first_step: true
logging_steps: 1
logging_strategy: steps
lr_scheduler_type: cosine
max_prompt_length: 512
max_completion_length: 1024
max_steps: -1
num_generations: 8
num_train_epochs: 1
output_dir: data/Qwen2.5-1.5B-Open-R1-GRPO
overwrite_output_dir: true
per_device_eval_batch_size: 32
per_device_train_batch_size: 16
push_to_hub: true
reward_funcs:
- accuracy
- format
- tag_count
reward_weights:
- 1.0
- 1.0
- 1.0
report_to:
- wandb
save_strategy: "epoch"
save_total_limit: 1
seed: 42
warmup_ratio: 0.1
"""

GREETING_TEMPLATE = "{% if greeting is defined %}{{ greeting + '\\n' }}{% endif %}"
"""Prepended to the tiny model's chat template: a variable only `chat_template_kwargs` sets."""


@pytest.fixture(scope="module")
def greeting_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model with a chat template that reads a `greeting` variable."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("greeting") / "model"
    shutil.copytree(tiny_model, out)
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = GREETING_TEMPLATE + tok.chat_template
    tok.save_pretrained(out)
    return out


def _flat(tmp_path: Path, model: Path, data: Path, out: Path, **extra) -> Path:
    """A flat TRL GRPO config of the open-r1 kind, for the tiny model on CPU."""
    body = {
        "model_name_or_path": str(model),
        "model_revision": "main",
        "torch_dtype": "float32",
        "attn_implementation": "eager",
        "dataset_name": str(data),
        "dataset_train_split": "train",
        "dataset_test_split": "test",
        "chat_template_kwargs": {"greeting": "HELLO FROM THE RECIPE"},
        "bf16": False,
        "gradient_checkpointing": False,
        "learning_rate": 1.0e-3,
        "logging_steps": 1,
        "max_steps": 2,
        "max_completion_length": 16,
        "num_generations": 4,
        "per_device_train_batch_size": 4,
        "save_strategy": "no",
        "report_to": "none",
        "output_dir": str(out),
        "seed": 7,
        "num_processes": 1,
        "wandb_project": "medcalc",
        **extra,
    }
    path = tmp_path / "config_demo.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


# ------------------------------------------------------------------ a flat config through `ehrmind rl`


def test_flat_trl_grpo_yaml_runs_through_ehrmind_rl(tmp_path, greeting_model, synthetic_csv):
    out = tmp_path / "rl"
    flat = _flat(tmp_path, greeting_model, synthetic_csv, out)
    result = runner.invoke(app, ["rl", "--recipe", str(flat), "--task", "medcalc", "--set", "limit=8"])
    assert result.exit_code == 0, result.output
    # the translation report names every key of the file, and where it went
    for key in yaml.safe_load(flat.read_text()):
        assert key in result.output, key
    assert "model_kwargs.attn_implementation" in result.output and "trl.num_generations" in result.output
    assert (out / "model.safetensors").is_file() and (out / "log_history.json").is_file()
    history = json.loads((out / "log_history.json").read_text())
    assert [h["step"] for h in history if "reward" in h] == [1, 2]

    record = json.loads((out / "ehrmind_run.json").read_text())
    assert record["recipe"]["model_kwargs"] == {
        "dtype": "float32", "attn_implementation": "eager", "trust_remote_code": None, "revision": "main",
    }  # fmt: skip
    assert record["recipe"]["seed"] == 7 and record["recipe"]["trl"]["num_generations"] == 4
    # revisions: a local model folder has no Hub commit, its config's hash instead; a local file its sha256
    assert record["model_revision"]["commit"] is None and record["model_revision"]["requested"] == "main"
    assert record["model_revision"]["config_sha256"] == sha256_file(greeting_model / "config.json")
    assert record["data_revision"] == {"sha256": sha256_file(synthetic_csv), "commit": None}
    imported = record["imported_from"]
    assert imported["source"] == str(flat) and imported["stage"] == "rl"
    assert [k["theirs"] for k in imported["keys"]] == [*yaml.safe_load(flat.read_text()), "--task"]
    status = {k["theirs"]: (k["ours"], k["status"]) for k in imported["keys"]}
    assert status["wandb_project"] == (None, "ignored") and status["dataset_test_split"] == (None, "ignored")
    assert status["torch_dtype"] == ("model_kwargs.dtype", "mapped")

    # the next stage (or an eval) of that model records the SFT / RL run it came from
    from ehrmind.revisions import model_revision

    upstream = model_revision(str(out))["ehrmind_run"]
    assert upstream["stage"] == "rl" and upstream["data_revision"]["sha256"] == sha256_file(synthetic_csv)


def test_model_kwargs_and_template_kwargs_reach_the_model_and_the_prompts(
    tmp_path, greeting_model, synthetic_csv
):
    from ehrmind import get_task
    from ehrmind.generate.chat import render_prompt
    from ehrmind.train.data import rl_rows
    from ehrmind.train.run import prepare

    flat = _flat(tmp_path, greeting_model, synthetic_csv, tmp_path / "o")
    recipe = load_recipe(flat, ["limit=2"], stage="rl", task="medcalc")
    prepared = prepare(recipe)
    # attn_implementation reached from_pretrained
    assert prepared.model.config._attn_implementation == "eager"
    kwargs = template_kwargs(recipe)
    assert kwargs == {"greeting": "HELLO FROM THE RECIPE"}
    # and GRPOConfig's own field, for the templating TRL does itself
    assert trl_kwargs(recipe)["chat_template_kwargs"] == kwargs
    rows, _ = rl_rows(prepared.task, prepared.examples, prepared.tokenizer, chat_template_kwargs=kwargs)
    assert all(r["prompt"].startswith("HELLO FROM THE RECIPE\n<|begin|>") for r in rows)
    # without the variable the template renders no greeting: the recipe's value is what reached it
    messages = get_task("medcalc").render(prepared.examples[0])
    assert "HELLO" not in render_prompt(prepared.tokenizer, messages)


# ------------------------------------------------------------------ `ehrmind import-recipe`


def test_import_recipe_reports_every_key_and_writes_a_recipe_that_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    flat = tmp_path / "config_demo.yaml"
    flat.write_text(OPEN_R1_DEMO)
    out = tmp_path / "recipe.yaml"
    args = ["import-recipe", str(flat), "--stage", "rl", "--task", "medcalc", "--out", str(out)]

    refused = runner.invoke(app, args)
    # what ehrmind cannot honour is refused, naming each key; nothing is written
    assert refused.exit_code == 2 and not out.exists()
    assert "cannot translate dataset_configs, reward_funcs, reward_weights" in refused.output
    assert "weights reward_funcs" in refused.output  # TRL's reward_weights is not ehrmind's

    drops = ["--drop", "dataset_configs", "--drop", "reward_funcs", "--drop", "reward_weights"]
    result = runner.invoke(app, [*args, *drops])
    assert result.exit_code == 0, result.output
    for key in yaml.safe_load(OPEN_R1_DEMO):
        assert key in result.output, key  # the table: their key → our key, for every key
    for ours in ("model_kwargs.revision", "model_kwargs.dtype", "task_options.system_prompt", "max_prompt_tokens",
                 "trl.warmup_steps", "trl.per_device_train_batch_size"):  # fmt: skip
        assert ours in result.output, ours
    text = out.read_text()
    assert text.startswith("# ehrmind rl recipe translated by `ehrmind import-recipe`")
    assert "#   reward_funcs: dropped" in text and "#   overwrite_output_dir: ignored" in text
    # passed through, and said (issue #26, item 3): on the console and in the recipe it wrote
    said = " ".join(result.output.split())
    for what in ("trl.log_completions is on", "uploaded to the Hugging Face Hub as Qwen2.5-1.5B-Open-R1-GRPO",
                 "trl.report_to names wandb"):  # fmt: skip
        assert what in said and what in text, what
    assert [line[:15] for line in text.splitlines() if line.startswith("# WARNING")] == [
        "# WARNING: trl."
    ] * 3
    recipe = load_recipe(out, stage="rl")
    assert recipe.model == "Qwen/Qwen2.5-1.5B-Instruct" and recipe.data == "AI-MO/NuminaMath-TIR"
    assert recipe.model_kwargs.dtype == "bfloat16" and recipe.model_kwargs.revision == "main"
    assert recipe.model_kwargs.attn_implementation == "flash_attention_2" and recipe.max_prompt_tokens == 512
    assert (
        recipe.task == "medcalc"
        and recipe.seed == 42
        and recipe.output_dir == "data/Qwen2.5-1.5B-Open-R1-GRPO"
    )
    assert recipe.trl["num_generations"] == 8 and recipe.trl["warmup_steps"] == 0.1
    assert recipe.reward_weights.correct == 1.1  # ehrmind's own weights, untouched by TRL's list
    assert "reward_weights" not in recipe.trl and "overwrite_output_dir" not in recipe.trl
    # the same translation as `ehrmind rl --recipe config_demo.yaml` would run
    again = runner.invoke(app, [*args, *drops])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_import_recipe_refuses_an_ehrmind_recipe(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"stage": "rl", "model": "m", "data": "d", "output_dir": "o"}))
    result = runner.invoke(
        app, ["import-recipe", str(path), "--stage", "rl", "--out", str(tmp_path / "x.yaml")]
    )
    assert result.exit_code == 2 and "not a flat TRL config" in result.output


BASE = {"model_name_or_path": "m", "dataset_name": "d.jsonl", "output_dir": "o", "ehrmind_task": "medcalc"}


@pytest.mark.parametrize(
    ("stage", "extra", "message"),
    [
        # a typo names the key and suggests the TRL field
        pytest.param("rl", {"learnig_rate": 1e-5}, "learnig_rate: unknown key", id="unknown"),
        pytest.param("rl", {"learnig_rate": 1e-5}, "did you mean 'learning_rate'?", id="unknown-hint"),
        # the name clash: TRL's reward_weights weights reward functions, ehrmind's reward is the verifier's
        pytest.param(
            "rl", {"reward_weights": [1.0, 2.0]}, "reward_weights: in a TRL config", id="trl-weights"
        ),
        pytest.param(
            "rl", {"reward_funcs": ["accuracy"]}, "reward_funcs: ehrmind rewards", id="reward-funcs"
        ),
        pytest.param("rl", {"chat_template": "{{ x }}"}, "chat_template: ehrmind renders", id="template"),
        pytest.param("rl", {"dataset_config": "main"}, "dataset_config: ehrmind loads", id="dataset-config"),
        # a ModelConfig field at a non-default value that ehrmind cannot honour
        pytest.param("rl", {"load_in_4bit": True}, "load_in_4bit: quantised", id="4bit"),
        pytest.param("rl", {"use_dora": True}, "use_dora: ehrmind's LoRA", id="dora"),
        # a field of the other stage's config
        pytest.param(
            "sft", {"num_generations": 8}, "num_generations: a GRPOConfig field; this is a sft", id="stage"
        ),
        # two keys for one of ours
        pytest.param(
            "rl",
            {"dtype": "float16", "torch_dtype": "bfloat16"},
            "dtype sets model_kwargs.dtype",
            id="dtype-twice",
        ),  # fmt: skip
        pytest.param("rl", {"ehrmind_rewards": {}}, "ehrmind has no key 'rewards'", id="ehrmind-prefix"),
        pytest.param("rl", {"ehrmind_task": None, "seed": 1}, "task: missing", id="no-task"),
    ],
)
def test_flat_keys_ehrmind_cannot_honour_are_refused_by_name(stage, extra, message):
    with pytest.raises(TranslationError) as err:
        translate_flat({**BASE, **extra}, stage=stage)
    assert message in str(err.value)
    refused = [k.theirs for k in err.value.translation.keys if k.status == "refused"]
    assert set(refused) <= set(extra)


def test_flat_keys_at_their_default_or_about_infrastructure_are_reported_not_dropped():
    data = {
        **BASE,
        "load_in_4bit": False,  # TRL's default: nothing to do
        "dataset_config": None,
        "dataset_streaming": False,
        "hub_model_revision": "main",  # open-r1's Hub-branch push
        "ehrmind_reward_weights": {"correct": 1.0, "wrong": 0.0, "bad_format": -1.0},  # ehrmind's own
        "use_peft": True,
        "lora_r": 8,
        "max_seq_length": 1024,
    }
    with pytest.raises(TranslationError, match="max_seq_length: an SFT field"):
        translate_flat(data, stage="rl")
    t = translate_flat(data, stage="sft")
    rows = {k.theirs: k for k in t.keys}
    assert list(rows) == list(data)  # one row per key, in the file's order
    assert {k for k, r in rows.items() if r.status == "ignored"} == {
        "load_in_4bit", "dataset_config", "dataset_streaming", "hub_model_revision",
    }  # fmt: skip
    assert t.recipe["reward_weights"] == {"correct": 1.0, "wrong": 0.0, "bad_format": -1.0}
    assert t.recipe["lora"] == {"enabled": True, "r": 8} and t.recipe["trl"] == {"max_length": 1024}
    assert t.recipe["stage"] == "sft" and t.recipe["task"] == "medcalc"


# ------------------------------------------------------------------ the model block of a recipe


def _recipe(tmp_path: Path, **body) -> Path:
    path = tmp_path / "r.yaml"
    base = {"stage": "rl", "task": "medcalc", "data": "d.jsonl", "model": "m", "output_dir": "o"}
    path.write_text(yaml.safe_dump({**base, **body}))
    return path


def test_model_kwargs_merge_with_trl_model_init_kwargs_and_conflicts_are_refused(tmp_path):
    r = load_recipe(
        _recipe(tmp_path, model_kwargs={"attn_implementation": "sdpa", "revision": "v1"},
                trl={"model_init_kwargs": {"torch_dtype": "bfloat16", "revision": "v1"}}),
    )  # fmt: skip
    assert model_init_kwargs(r) == {"attn_implementation": "sdpa", "revision": "v1", "dtype": "bfloat16"}
    assert "model_init_kwargs" not in trl_kwargs(r)
    with pytest.raises(ConfigError, match="model_kwargs.revision = 'v2' but trl.model_init_kwargs.revision"):
        load_recipe(
            _recipe(tmp_path, model_kwargs={"revision": "v2"}, trl={"model_init_kwargs": {"revision": "v1"}})
        )
    with pytest.raises(ConfigError, match="device_map not supported"):  # refused before any model loads
        load_recipe(_recipe(tmp_path, trl={"model_init_kwargs": {"device_map": "auto"}}))
    with pytest.raises(ConfigError, match="unknown key 'model_kwargs.torch_dtype'; did you mean 'dtype'"):
        load_recipe(_recipe(tmp_path, model_kwargs={"torch_dtype": "float16"}))


def test_chat_template_kwargs_and_the_reward_weights_clash_in_recipes(tmp_path):
    r = load_recipe(_recipe(tmp_path, chat_template_kwargs={"enable_thinking": False}))
    assert template_kwargs(r) == {"enable_thinking": False}
    assert trl_kwargs(r)["chat_template_kwargs"] == {"enable_thinking": False}
    with pytest.raises(ConfigError, match="add_generation_prompt are set by ehrmind"):
        load_recipe(_recipe(tmp_path, chat_template_kwargs={"add_generation_prompt": False}))
    with pytest.raises(ConfigError, match="chat_template_kwargs.x = 1 but trl.chat_template_kwargs.x = 2"):
        load_recipe(_recipe(tmp_path, chat_template_kwargs={"x": 1}, trl={"chat_template_kwargs": {"x": 2}}))
    # SFTConfig has no chat_template_kwargs: the top-level key is the one place (ehrmind renders SFT prompts)
    with pytest.raises(ConfigError, match="unknown trl.chat_template_kwargs for SFTConfig"):
        load_recipe(_recipe(tmp_path, stage="sft", trl={"chat_template_kwargs": {"x": 1}}))
    sft = load_recipe(_recipe(tmp_path, stage="sft", chat_template_kwargs={"x": 1}))
    assert "chat_template_kwargs" not in trl_kwargs(sft) and template_kwargs(sft) == {"x": 1}
    with pytest.raises(ConfigError, match="trl.reward_weights .* set the top-level reward_weights"):
        load_recipe(_recipe(tmp_path, trl={"reward_weights": [1.0, 1.0]}))


# ------------------------------------------------------------------ revisions


def test_revisions_hub_commits_files_and_ehrmind_folders(tmp_path, monkeypatch, synthetic_csv):
    from huggingface_hub import constants

    from ehrmind.eval.runner import run_info
    from ehrmind.registry import get_task
    from ehrmind.revisions import data_revision, hub_commit, model_revision

    commit = "0123456789abcdef0123456789abcdef01234567"
    assert hub_commit("org/model", revision=commit) == commit  # a commit is its own revision
    refs = tmp_path / "hub" / "datasets--org--data" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert data_revision("org/data") == {"sha256": None, "commit": commit}  # from the local Hub cache
    assert hub_commit("org/other", "dataset") is None  # offline and not cached: unknown, not guessed
    assert data_revision(synthetic_csv) == {"sha256": sha256_file(synthetic_csv), "commit": None}

    folder = tmp_path / "sft"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "ehrmind_run.json").write_text(json.dumps({"stage": "sft", "model": "org/model",
                                                          "model_revision": {"commit": commit}}))  # fmt: skip
    got = model_revision(str(folder))
    assert got["commit"] is None and got["config_sha256"] == sha256_file(folder / "config.json")
    assert got["ehrmind_run"] == {"stage": "sft", "model": "org/model", "model_revision": {"commit": commit}}

    task = get_task("medcalc")
    info = run_info(task, task.load(synthetic_csv), str(synthetic_csv))  # eval's run.json and metrics.json
    assert info["data_revision"]["sha256"] == sha256_file(synthetic_csv)
