"""Issue #13, item 4: each task's options are a typed model (`Task.Options`), shared by `get_task`, the
CLI's --task-option and a recipe's `task_options:`; the prompt mode is declared once; trec_ct's prompt
budget no longer shares its name with a recipe's `max_prompt_tokens`."""

from __future__ import annotations

import inspect
import re
import typing

import pytest

from ehrmind import get_task, list_tasks
from ehrmind.errors import ConfigError
from ehrmind.registry import task_class
from ehrmind.tasks.base import PromptMode, TaskOptions


def _recipe(tmp_path, text: str):
    from ehrmind.train.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("stage: rl\ndata: d.jsonl\nmodel: m\noutput_dir: out\n" + text)
    return load_recipe(path)


def test_every_task_declares_its_options_once():
    """Issue #27: the options model is the constructor's one declaration (no parameter list beside it)."""
    families = [
        n
        for n in list_tasks()
        if task_class(n).__module__.startswith("ehrmind.") or "example_family" in task_class(n).__module__
    ]
    assert {"medcalc", "trec_ct", "ehrshot"} <= set(families)  # test doubles elsewhere are not families
    for name in families:
        cls = task_class(name)
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
        assert [p.kind for p in params] == [inspect.Parameter.VAR_KEYWORD], name
        assert all(f.description for f in cls.Options.model_fields.values()), name
        assert cls.Options.model_config.get("extra") == "forbid", name  # never extra="allow"
        task = cls()
        assert task.options == cls.Options() and task.options.model_fields_set == set(), name


def test_a_bad_value_names_the_task_and_the_field():
    with pytest.raises(
        ConfigError, match=r"task 'trec_ct' option prompt_token_budget: .*greater than or equal to 256"
    ):
        get_task("trec_ct", prompt_token_budget=10)
    with pytest.raises(ConfigError, match="option prompt_token_budget: .*integer"):
        get_task("trec_ct", prompt_token_budget="lots")
    with pytest.raises(ConfigError, match="option mode"):
        get_task("medcalc", mode="chatty")
    with pytest.raises(ConfigError, match=r"has no option colour; its options: mode, prefill"):
        get_task("medcalc", colour="red")
    assert get_task("trec_ct", prompt_token_budget="1500").prompt_token_budget == 1500  # --task-option text


def test_the_old_trec_ct_name_says_what_replaced_it():
    with pytest.raises(ConfigError, match="max_prompt_tokens was renamed: use prompt_token_budget") as e:
        get_task("trec_ct", max_prompt_tokens=1500)
    assert "drops longer training prompts" in str(e.value)


def test_a_recipe_passes_the_tasks_own_options(tmp_path):
    from ehrmind.train.recipe import recipe_task

    recipe = _recipe(tmp_path, "task: trec_ct\ntask_options: {prompt_token_budget: 1500, mode: direct}\n")
    task = recipe_task(recipe)
    assert task.prompt_token_budget == 1500 and task.contract.mode == "direct"
    assert recipe.task_options.model_dump()["prompt_token_budget"] == 1500
    assert recipe.model_dump()["task_options"]["prompt_token_budget"] == 1500  # in ehrmind_run.json too
    assert recipe_task(recipe, mode="reasoning").contract.mode == "reasoning"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{colour: red}", "has no option task_options.colour"),
        ("{prompt_token_budget: 10}", "option task_options.prompt_token_budget"),
        ("{max_prompt_tokens: 900}", "task_options.max_prompt_tokens was renamed"),
        ("{mode: one-shot}", "task_options.mode: training prompts are 'reasoning' or 'direct'"),
        ("{reward_weights: {correct: 2}}", "set reward_weights at the top level"),
    ],
)
def test_a_recipe_with_a_bad_task_option_fails_naming_it(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message) as e:
        _recipe(tmp_path, f"task: trec_ct\ntask_options: {options}\n")
    assert "r.yaml" in str(e.value)


def test_the_prompt_mode_is_declared_once():
    assert typing.get_args(TaskOptions.model_fields["mode"].annotation) == typing.get_args(PromptMode)
    from ehrmind.train.recipe import Recipe

    assert Recipe.model_fields["task_options"].default_factory is TaskOptions


# ------------------------------------------------------------------ issue #27's option fixes


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        # an EHRSHOT builder option with a typo fails when given, not when raw events are read (or never)
        ("ehrshot", {"windw_days": 30}, "has no option windw_days"),
        # inverted reward weights: the rule lives with RewardWeights, so every path refuses them
        ("medcalc", {"reward_weights": {"correct": 0.0, "bad_format": 5.0}}, "bad_format <= wrong < correct"),
        ("trec_ct", {"reward_weights": {"correct": 1.0, "wrong": 1.0}}, "bad_format <= wrong < correct"),
        # issue #31: a flag is not a number (true was read as a budget of 1), nor a number a flag (1 as true)
        ("trec_ct", {"prompt_token_budget": True}, "option prompt_token_budget: expected an integer, got a boolean"),
        ("medcalc", {"prefill": 1}, "option prefill: expected true or false or text, got 1"),
        ("ehrshot", {"mode": False}, "option mode: expected one of 'reasoning', 'direct', 'one-shot', got a boolean"),
        # NaN is no number of tokens
        ("trec_ct", {"prompt_token_budget": float("nan")}, "option prompt_token_budget: Input should be a finite"),
    ],
)  # fmt: skip
def test_bad_options_fail_for_every_family(task, options, message):
    from ehrmind import get_task
    from ehrmind.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        get_task(task, **options)


def test_ehrshot_build_options_and_labeler_settings_pass():
    from ehrmind import get_task

    assert get_task("ehrshot", max_tokens=300, rules="ehrshot").options.max_tokens == 300


def test_data_set_options_a_task_does_not_take_are_refused(tmp_path, synthetic_csv):
    """`ehrmind data --task medcalc --set windw=30` wrote `windw` into manifest.json as if applied."""
    from typer.testing import CliRunner

    from ehrmind.cli import app

    args = ["data", "--task", "medcalc", "--source", str(synthetic_csv), "--out", str(tmp_path / "d")]
    r = CliRunner().invoke(app, [*args, "--set", "windw=30"])
    assert r.exit_code == 2 and "not applied: windw" in r.output and not (tmp_path / "d").exists()
    assert CliRunner().invoke(app, args).exit_code == 0
