"""Issue #31, hostile and careless input: recipes, flat TRL configs and task options. Every bad value is one
`error:` line naming the key (exit code 2, no traceback) before anything loads or trains; impossible values
(`max_steps: -7`, `learning_rate: .nan`, a flag for a number) no longer pass to train something else; a
key given twice is refused by the YAML loader; include loops and 60,000-key files end in an error at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.io import parse_yaml, read_yaml
from ehrmind.train.recipe import load_recipe

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

RL = "stage: rl\ntask: medcalc\ndata: d.jsonl\nmodel: m\noutput_dir: out\n"
SFT = RL.replace("stage: rl", "stage: sft")
FLAT = "model_name_or_path: m\ndataset_name: d.jsonl\noutput_dir: out\nehrmind_task: medcalc\n"


def _one_error_line(result) -> str:
    """The command failed as a user error: exit code 2, no traceback, exactly one `error:` line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


# ------------------------------------------------------------------ ehrmind recipes


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # keys that are not names: were pydantic's "Keys should be strings" at best
        pytest.param(RL + "3: x\n", "key 3 is not a name", id="int-key"),
        pytest.param(RL + "null: x\n", "key None is not a name", id="null-key"),
        # include of the wrong type: TypeError tracebacks
        pytest.param("include: 3\n" + RL, "include: expected a file name or a list of file names", id="include-int"),
        pytest.param("include: [3]\n" + RL, "include: expected a file name", id="include-list-of-int"),
        pytest.param("include: r.yaml\n" + RL, "include cycle", id="self-include"),
        # sections of the wrong shape
        pytest.param(RL + "lora: 8\n", "lora: Input should be a valid dictionary", id="lora-int"),
        pytest.param(RL + "task_options: text\n", "task_options must be a mapping", id="task-options-text"),
        pytest.param(RL + "task_options: {1: 2}\n", "option name task_options.1 is not text", id="task-option-int"),
        pytest.param("stage: rl\nsft: 3\nrl: {task: medcalc}\n", "sft: a stage's section is a mapping", id="stage-3"),
        pytest.param(RL.replace("stage: rl", "stage: 3"), "stage: expected sft or rl, got 3", id="stage-int"),
        pytest.param(RL.replace("task: medcalc", "task: [a]"), "task: expected a task name", id="task-list"),
        # a missing key says so, without echoing the whole recipe
        pytest.param(RL.replace("data: d.jsonl\n", ""), "data: missing (a required key)", id="missing-data"),
        # impossible TRL values: -7 trained 192 steps (TRL: <= 0 means epochs), true trained 1 step
        pytest.param(RL + "trl: {max_steps: -7}\n", "trl.max_steps = -7: expected a number of optimizer steps >= 1, or -1", id="max-steps-neg"),
        pytest.param(RL + "trl: {max_steps: 0}\n", "trl.max_steps = 0: expected", id="max-steps-0"),
        pytest.param(RL + "trl: {max_steps: true}\n", "trl.max_steps = True: expected an integer, got a boolean", id="max-steps-bool"),
        # died after the model loaded, or trained nothing
        pytest.param(RL + "trl: {learning_rate: .nan}\n", "trl.learning_rate = nan: expected a finite number", id="lr-nan"),
        pytest.param(RL + "trl: {learning_rate: 0}\n", "trl.learning_rate = 0: Input should be greater than 0", id="lr-0"),
        pytest.param(RL + "trl: {learning_rate: true}\n", "trl.learning_rate = True: expected a number, got a boolean", id="lr-bool"),
        pytest.param(RL + "trl: {per_device_train_batch_size: 0}\n", "trl.per_device_train_batch_size = 0", id="batch-0"),
        pytest.param(RL + "trl: {gradient_accumulation_steps: 0}\n", "trl.gradient_accumulation_steps = 0", id="accumulation-0"),
        pytest.param(RL + "trl: {steps_per_generation: 0}\n", "trl.steps_per_generation = 0", id="steps-per-generation-0"),
        pytest.param(RL + "trl: {num_generations: true}\n", "trl.num_generations = True: expected an integer", id="group-bool"),
        pytest.param(RL + "trl: {num_train_epochs: .nan}\n", "trl.num_train_epochs = nan: expected a finite number", id="epochs-nan"),
        pytest.param(RL + "trl: {num_train_epochs: 0}\n", "trl.num_train_epochs = 0", id="epochs-0"),
        pytest.param(RL + "trl: {warmup_steps: -1}\n", "trl.warmup_steps = -1: expected a share", id="warmup-neg"),
        pytest.param(RL + "trl: {max_completion_length: 0}\n", "trl.max_completion_length = 0", id="completion-0"),
        pytest.param(RL + "trl: {temperature: 0}\n", "trl.temperature = 0", id="temperature-0"),
        pytest.param(RL + "trl: {beta: .nan}\n", "trl.beta = nan: expected a finite number", id="beta-nan"),
        # a number for a flag
        pytest.param(RL + "trl: {use_vllm: 1}\n", "trl.use_vllm = 1: expected true or false, got 1", id="flag-int"),
        # ehrmind's own fields: flags are not numbers, numbers are finite
        pytest.param(RL + "seed: true\n", "seed: expected an integer, got a boolean (true)", id="seed-bool"),
        pytest.param(RL + "limit: true\n", "limit: expected an integer, got a boolean", id="limit-bool"),
        pytest.param(RL + "lora: {r: true}\n", "lora.r: expected an integer, got a boolean", id="lora-r-bool"),
        pytest.param(RL + "lora: {enabled: 1}\n", "lora.enabled: expected true or false, got 1", id="lora-enabled-int"),
        pytest.param(RL + "lora: {dropout: .nan}\n", "lora.dropout: Input should be a finite number", id="dropout-nan"),
        pytest.param(RL + "reward_weights: {correct: true}\n", "reward_weights.correct: expected a number, got a boolean", id="weight-bool"),
        pytest.param(RL + "reward_weights: {correct: .inf}\n", "reward_weights.correct: Input should be a finite number", id="weight-inf"),
        pytest.param(RL + "task_options: {prefill: 1}\n", "option task_options.prefill: expected true or false or text, got 1", id="prefill-int"),
        pytest.param(SFT + "sft_data: {fraction: .nan}\n", "sft_data.fraction: Input should be a finite number", id="fraction-nan"),
        pytest.param(SFT + "sft_data: {per_group: {Anion Gap: true}}\n", "sft_data.per_group: expected", id="per-group-bool"),
        # the last of two values won silently
        pytest.param(RL + "trl: {learning_rate: 1.0e-5}\ntrl: {max_steps: 3}\n", "key 'trl' is given twice (lines 6 and 7); keep one", id="duplicate-key"),
        pytest.param(RL + "trl:\n  max_steps: 3\n  max_steps: 5\n", "key 'max_steps' is given twice (lines 7 and 8)", id="duplicate-nested"),
    ],
)  # fmt: skip
def test_a_hostile_recipe_is_one_error_line_naming_the_key(tmp_path, monkeypatch, body, message):
    monkeypatch.chdir(tmp_path)  # the recipe's output_dir (out) and data (d.jsonl) are relative
    path = tmp_path / "r.yaml"
    path.write_text(body)
    stage = "sft" if body.startswith("stage: sft") else "rl"
    line = _one_error_line(runner.invoke(app, [stage, "--recipe", str(path)]))
    assert message in line and str(path) in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "trl.max_steps=-7"], "trl.max_steps = -7: expected a number of optimizer steps"),
        (["--set", "trl.learning_rate=.nan"], "trl.learning_rate = nan: expected a finite number"),
        (["--set", "lora.enabled=1"], "lora.enabled: expected true or false, got 1"),
        (["--set", "task_options={mode: direct, mode: reasoning}"], "key 'mode' is given twice"),
        (["--plan", "{plan}"], "plan.yaml: key 'sft_data' is given twice (lines 1 and 2)"),
    ],
)
def test_overrides_and_plans_pass_the_same_checks(tmp_path, monkeypatch, args, message):
    """`--set` and `--plan` values meet the rules a recipe file meets, before anything trains."""
    monkeypatch.chdir(tmp_path)
    path, plan = tmp_path / "r.yaml", tmp_path / "plan.yaml"
    path.write_text(SFT)
    plan.write_text("sft_data: {fraction: 0.2}\nsft_data: {fraction: 0.5}\n")
    args = [a.replace("{plan}", str(plan)) for a in args]
    line = _one_error_line(runner.invoke(app, ["sft", "--recipe", str(path), *args]))
    assert message in line
    assert not (tmp_path / "out").exists()


def test_diamond_includes_are_refused_not_read_exponentially(tmp_path):
    """Each file includes the next twice: 2**20 reads (a hang); refused after MAX_RECIPE_FILES reads."""
    for i in range(20):
        (tmp_path / f"f{i}.yaml").write_text(f"include: [f{i + 1}.yaml, f{i + 1}.yaml]\n")
    (tmp_path / "f20.yaml").write_text(RL)
    with pytest.raises(ConfigError, match=r"f0.yaml: its includes read more than 32 files"):
        load_recipe(tmp_path / "f0.yaml", stage="rl")
    (tmp_path / "ok.yaml").write_text("include: [f19.yaml]\n")  # 4 reads: fine
    assert load_recipe(tmp_path / "ok.yaml", stage="rl").task == "medcalc"
    # under the file count, but 5 reads of a 0.9 MB file (a long comment: quick to read)
    (tmp_path / "big.yaml").write_text("# " + "x" * 900_000 + "\nseed: 1\n")
    (tmp_path / "many.yaml").write_text("include: [big.yaml, big.yaml, big.yaml, big.yaml, big.yaml]\n" + RL)
    with pytest.raises(ConfigError, match=r"many.yaml: its includes read more than 4,000,000 bytes in all"):
        load_recipe(tmp_path / "many.yaml", stage="rl")


def test_thousands_of_unknown_keys_end_in_one_short_line(tmp_path):
    """A 0.7 MB recipe of 60,000 unknown keys took 598 s: a closest-key search (difflib) and a report row per
    key. Now it is one line naming the first few; 60,000 keys (0.6 MB) take about 3 s of CPU on a loaded
    2-core machine, most of it YAML parsing. 5,000 keys here, for an ehrmind recipe, its task_options and a
    flat TRL config."""
    keys = "".join(f"k{i}: 1\n" for i in range(5_000))
    nested = "".join(f"  k{i}: 1\n" for i in range(5_000))
    cases = [
        (RL + keys, "unknown key 'k0'", "and 4,995 more problems"),
        (RL + "task_options:\n" + nested, "task_options.k0", "(and 4,995 more)"),
        (FLAT + keys, "5,000 keys are not fields of TRL's GRPOConfig", "(the first: k0, k1, k2, k3, k4)"),
    ]
    for body, first, more in cases:
        path = tmp_path / "big.yaml"
        path.write_text(body)
        result = runner.invoke(app, ["rl", "--recipe", str(path)])
        line = _one_error_line(result)
        assert first in line and more in line and len(line) < 600
        assert len(result.output) < 2000  # no report table of a row per key


# ------------------------------------------------------------------ flat TRL / open-r1 configs


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(FLAT + "max_steps: -7\n", "trl.max_steps = -7: expected a number of optimizer steps", id="max-steps-neg"),
        pytest.param(FLAT + "max_steps: true\n", "trl.max_steps = True: expected an integer", id="max-steps-bool"),
        pytest.param(FLAT + "learning_rate: .nan\n", "trl.learning_rate = nan: expected a finite number", id="lr-nan"),
        pytest.param(FLAT + "per_device_train_batch_size: 0\n", "trl.per_device_train_batch_size = 0", id="batch-0"),
        pytest.param(FLAT + "use_peft: 1\n", "lora.enabled: expected true or false, got 1", id="use-peft-int"),
        pytest.param(FLAT + "lora_r: true\n", "lora.r: expected an integer, got a boolean", id="lora-r-bool"),
        # AttributeError ('int' object has no attribute 'startswith') and TypeError tracebacks
        pytest.param(FLAT + "3: x\n", "key 3 is not a name", id="int-key"),
        pytest.param(FLAT + "null: x\n", "key None is not a name", id="null-key"),
        pytest.param("include: 3\n" + FLAT, "include: expected a file name", id="include-int"),
        # a section set whole and a key inside it: TypeError (item assignment) or StopIteration
        pytest.param(FLAT + "ehrmind_lora: 8\nlora_r: 4\n", "ehrmind_lora sets lora to 8, not a mapping", id="section-then-key"),
        pytest.param(FLAT + "lora_r: 4\nehrmind_lora: 8\n", "lora_r sets lora to {'r': 4} already", id="key-then-section"),
        pytest.param(FLAT + "ehrmind_task_options: text\nsystem_prompt: hi\n", "ehrmind_task_options sets task_options to 'text', not a mapping", id="options-text"),
        pytest.param(FLAT + "torch_dtype: bfloat16\nehrmind_model_kwargs: {dtype: float16}\n", "torch_dtype sets model_kwargs to {'dtype': 'bfloat16'} already", id="dtype-then-kwargs"),
        pytest.param(FLAT + "ehrmind_model_kwargs: {dtype: float16}\ntorch_dtype: bfloat16\n", "ehrmind_model_kwargs sets model_kwargs.dtype to 'float16' already", id="kwargs-then-dtype"),
        pytest.param(FLAT + "learning_rate: 1.0e-5\nlearning_rate: 1.0e-3\n", "key 'learning_rate' is given twice (lines 5 and 6)", id="duplicate-key"),
        # a newline in a key broke the error into two lines
        pytest.param(FLAT + '"a\\nb": 1\n', "cannot translate 'a\\nb'", id="newline-key"),
    ],
)  # fmt: skip
def test_a_hostile_flat_config_is_one_error_line_and_writes_nothing(tmp_path, monkeypatch, body, message):
    monkeypatch.chdir(tmp_path)
    path, out = tmp_path / "flat.yaml", tmp_path / "recipe.yaml"
    path.write_text(body)
    line = _one_error_line(
        runner.invoke(app, ["import-recipe", str(path), "--stage", "rl", "--out", str(out)])
    )
    assert message in line and str(path) in line
    assert not out.exists()
    # `ehrmind rl` on the flat file refuses it the same way, before anything trains
    assert message in _one_error_line(runner.invoke(app, ["rl", "--recipe", str(path)]))
    assert not (tmp_path / "out").exists()


def test_agreeing_model_kwargs_and_torch_dtype_still_translate(tmp_path):
    path, out = tmp_path / "flat.yaml", tmp_path / "recipe.yaml"
    path.write_text(FLAT + "ehrmind_model_kwargs: {dtype: bfloat16}\ntorch_dtype: bfloat16\nmax_steps: -1\n")
    result = runner.invoke(app, ["import-recipe", str(path), "--stage", "rl", "--out", str(out)])
    assert result.exit_code == 0, result.output
    recipe = load_recipe(out, stage="rl")
    assert recipe.model_kwargs.dtype == "bfloat16" and recipe.trl["max_steps"] == -1  # -1: TRL's "use epochs"


# ------------------------------------------------------------------ the YAML loader


def test_the_yaml_loader_refuses_a_key_given_twice_and_keeps_merges():
    with pytest.raises(ConfigError, match=r"^x.yaml: key 'a' is given twice \(lines 1 and 3\); keep one$"):
        parse_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")
    with pytest.raises(ConfigError, match="key True is given twice"):  # yes and true are one key
        parse_yaml("true: 1\nyes: 2\n", "x.yaml")
    # a `<<: *base` merge overridden by an explicit key is YAML's own way to vary a base, not a duplicate
    assert parse_yaml("b: &b {m: 1, n: 2}\nc:\n  <<: *b\n  m: 3\n", "x.yaml")["c"] == {"m": 3, "n": 2}


def test_every_shipped_yaml_reads_and_every_recipe_loads(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")  # the shipped recipes' batches are sized for 8 GPUs
    files = sorted([*(REPO / "recipes").rglob("*.yaml"), *(REPO / "src/ehrmind/recipes").glob("*.yaml")])
    assert len(files) > 10
    for path in files:
        read_yaml(path)  # no key twice in anything we ship (accelerate configs included)
        if "accelerate" in path.parts or path.name == "base.yaml":  # not recipes / fragments included
            continue
        for stage in ("sft", "rl"):
            assert load_recipe(path, stage=stage).stage == stage


# ------------------------------------------------------------------ --task-option


@pytest.fixture(scope="module")
def scored(synthetic_csv, tmp_path_factory) -> list[str]:
    """`ehrmind score` arguments over 20 synthetic MedCalc rows and a completion for each."""
    from ehrmind import get_task

    preds = tmp_path_factory.mktemp("preds") / "p.jsonl"
    rows = get_task("medcalc").load(synthetic_csv)
    completion = '<think>x</think><answer>{"answer": 1}</answer>'
    preds.write_text("".join(json.dumps({"id": ex.id, "completion": completion}) + "\n" for ex in rows))
    return ["--data", str(synthetic_csv), "--predictions", str(preds)]


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        # flags are not numbers, numbers not flags: prefill=1 was read as true, true as a 1-token budget
        pytest.param("medcalc", ["prefill=1"], "option prefill: expected true or false or text, got 1", id="prefill-int"),
        pytest.param("trec_ct", ["prompt_token_budget=true"], "option prompt_token_budget: expected an integer, got a boolean", id="budget-bool"),
        pytest.param("trec_ct", ["prompt_token_budget=.nan"], "option prompt_token_budget: Input should be a finite number", id="budget-nan"),
        pytest.param("trec_ct", ["prompt_token_budget=lots"], "option prompt_token_budget: Input should be a valid integer", id="budget-text"),
        # the last of two values won silently
        pytest.param("medcalc", ["mode=direct", "mode=reasoning"], "--task-option mode is given twice", id="repeated"),
        # an empty value meant the default for one option and empty text for another
        pytest.param("medcalc", ["system_prompt="], "--task-option system_prompt= has no value", id="empty-text"),
        pytest.param("medcalc", ["mode="], "--task-option mode= has no value", id="empty-mode"),
        pytest.param("medcalc", ["mode"], "--task-option expects key=value, got 'mode'", id="no-equals"),
        pytest.param("medcalc", ["__class__=x"], "task 'medcalc' has no option __class__", id="dunder"),
        pytest.param("medcalc", ["x" * 5000 + "=1"], "has no option xxxxxxxx", id="long-key"),
        pytest.param("medcalc", ["a\nb=1"], "has no option 'a\\nb'", id="newline-key"),
        pytest.param("medcalc", ["reward_weights={correct: .nan}"], "reward weight correct must be a finite number", id="weights-nan"),
        # --mode and --task-option mode disagreeing: --mode won silently
        pytest.param("medcalc", ["mode=reasoning", "--mode=direct"], "--mode 'direct' and --task-option mode='reasoning' disagree", id="mode-twice"),
    ],
)  # fmt: skip
def test_a_bad_task_option_is_one_error_line(tmp_path, scored, task, options, message):
    args = ["score", "--task", task, *scored, "--out", str(tmp_path / "out")]
    flags = [a for o in options for a in ((o,) if o.startswith("--") else ("--task-option", o))]
    line = _one_error_line(runner.invoke(app, [*args, *flags]))
    assert message in line and len(line) < 600
    assert not (tmp_path / "out").exists()


def test_mode_and_prefill_task_options_reach_the_task(tmp_path, scored):
    for options, mode, prefill in ((["mode=direct"], "direct", ""), (["prefill=true"], "reasoning", True)):
        out = tmp_path / mode
        args = ["score", "--task", "medcalc", *scored, "--out", str(out)]
        result = runner.invoke(app, [*args, *(a for o in options for a in ("--task-option", o))])
        assert result.exit_code == 0, result.output
        run = json.loads((out / "run.json").read_text())
        assert run["prompt_mode"] == mode and bool(run["prefill"]) == bool(prefill)
