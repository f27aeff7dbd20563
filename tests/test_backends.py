"""`--backend hf|vllm|openai`: one choice for eval, diagnose, matrix and rationales; all samples of a prompt
in one request, with the seed of its position in the data; prefill continued; vLLM an optional extra."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.generate.backends import Backend, make_generator
from ehrmind.generate.hf import GenerationSettings
from ehrmind.generate.openai_compat import OpenAICompatGenerator
from test_openai_compat import Scripted, completion, serving

PROMPT = [{"role": "system", "content": "Compute."}, {"role": "user", "content": "A note."}]
PREFILLED = [*PROMPT, {"role": "assistant", "content": "<think>"}]


# ---------------------------------------------------------------- the choice and its rules


def test_backend_choice_rules():
    assert Backend.choose().name == "hf" and Backend.choose(url="http://h:1/v1").name == "openai"
    assert Backend.choose("vllm").record() == {"backend": "vllm"} and Backend.choose("hf").record() == {}
    assert Backend.choose(url="http://h:1/v1", concurrency=4, logprobs=True).record() == {
        "backend": "openai",
        "concurrency": 4,
        "logprobs": True,
    }
    for kwargs, message in (
        ({"name": "tgi"}, "--backend must be one of hf, vllm, openai"),
        ({"name": "openai"}, "--backend openai needs --url"),
        ({"name": "hf", "url": "http://h:1/v1"}, "--url apply to an endpoint"),
        ({"name": "vllm", "concurrency": 8}, "--concurrency apply to an endpoint"),
        ({"name": "hf", "logprobs": True}, "--logprobs applies to an endpoint"),
        ({"url": "http://h:1/v1", "concurrency": 0}, "--concurrency must be >= 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            Backend.choose(**kwargs)


def test_unset_api_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("EHRMIND_TEST_KEY", raising=False)
    backend = Backend.choose(url="http://127.0.0.1:9/v1", api_key_env="EHRMIND_TEST_KEY")
    with pytest.raises(ConfigError, match="EHRMIND_TEST_KEY, which is not set"):
        make_generator("m", GenerationSettings(), backend)


def test_vllm_absent_says_how_to_install(tmp_path, synthetic_csv, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm fails, as where it is not installed
    args = ["eval", "--task", "medcalc", "--data", str(synthetic_csv), "--model", "m", "--backend", "vllm"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "pip install 'ehrmind[vllm]'" in result.output


# ---------------------------------------------------------------- endpoints: n at once, seeds, prefill


def _reply_by_seed(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    n, seed = body["n"], body["seed"]
    return (
        200,
        {},
        completion(*[f'<think>s{seed}k{k}</think><answer>{{"answer": {seed}}}</answer>' for k in range(n)]),
    )


def test_endpoint_eval_asks_for_all_samples_at_once_and_resumes_identically(tmp_path, synthetic_csv):
    out = tmp_path / "eval"
    args = ["eval", "--task", "medcalc", "--data", str(synthetic_csv), "--model", "served", "--out", str(out)]
    args += ["--limit", "5", "--samples", "3", "--temperature", "0.7", "--seed", "100", "--concurrency", "2"]
    with Scripted(_reply_by_seed) as srv:
        first = CliRunner().invoke(app, [*args, "--url", srv.url])
        assert first.exit_code == 0, first.output
        bodies = [b for b, _ in srv.requests]
        # one request per example, all 3 samples in it, seeded by the example's position in the data
        assert sorted((b["n"], b["seed"]) for b in bodies) == [(3, 100 + i) for i in range(5)]
        rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
        assert [(r["id"], r["sample"]) for r in rows] == [(str(i), s) for i in range(1, 6) for s in range(3)]
        assert rows[4]["completion"].startswith("<think>s101k1</think>")
        whole = (out / "predictions.jsonl").read_bytes()
        # a run stopped before its last example resumes with that example's request only
        (out / "predictions.jsonl").write_text("".join(f"{json.dumps(r)}\n" for r in rows[:13]))
        srv.requests.clear()
        again = CliRunner().invoke(app, [*args, "--url", srv.url])
        assert again.exit_code == 0, again.output
        assert [(b["n"], b["seed"]) for b, _ in srv.requests] == [(3, 104)]
    assert (out / "predictions.jsonl").read_bytes() == whole
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["backend"] == "openai" and run["concurrency"] == 2
    assert run["environment"]["backend"] == "openai" and "served" not in run["environment"]["url"]


def test_chat_template_kwargs_reach_the_endpoint_and_the_run_record(tmp_path, synthetic_csv):
    out = tmp_path / "eval"
    args = ["eval", "--task", "medcalc", "--data", str(synthetic_csv), "--model", "m", "--out", str(out)]
    args += ["--limit", "2", "--chat-template-kwarg", "enable_thinking=false"]
    with Scripted(_reply_by_seed) as srv:
        assert (r := CliRunner().invoke(app, [*args, "--url", srv.url])).exit_code == 0, r.output
        assert all(b["chat_template_kwargs"] == {"enable_thinking": False} for b, _ in srv.requests)
        run = json.loads((out / "metrics.json").read_text())["run"]
        assert run["chat_template_kwargs"] == {"enable_thinking": False}
        # another template variable is another run: refused, not mixed into the same folder
        changed = [*args[:-1], "enable_thinking=true", "--url", srv.url]
        r = CliRunner().invoke(app, changed)
        assert r.exit_code == 2 and "different chat_template_kwargs" in r.output
        r = CliRunner().invoke(app, [*args, "--url", srv.url, "--revision", "abc"])
        assert r.exit_code == 2 and "an endpoint serves its own" in r.output


def test_endpoint_prefill_is_continued_and_can_be_left_to_the_server():
    with Scripted(lambda body, headers: (200, {}, completion("x"))) as srv:
        gen = OpenAICompatGenerator(srv.url, "m", settings=GenerationSettings(max_new_tokens=4))
        gen.generate([PROMPT, PREFILLED], seeds=[1, 2])
        plain, prefilled = sorted((b for b, _ in srv.requests), key=lambda b: b["seed"])
        assert "continue_final_message" not in plain
        assert prefilled["continue_final_message"] is True and prefilled["add_generation_prompt"] is False
        srv.requests.clear()
        OpenAICompatGenerator(srv.url, "m", prefill_fields=False).generate([PREFILLED])
        assert "continue_final_message" not in srv.requests[0][0]
    with pytest.raises(ConfigError, match="2 seeds for 1 prompts"):
        gen.generate([PROMPT], seeds=[1, 2])


def test_connections_are_reused(tiny_model):
    from ehrmind.generate.hf import HFGenerator

    tiny_generator = HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=2))
    # httpx keeps the connection open between requests: the server sees one client port for 3 requests
    ports: list[int] = []
    with serving(tiny_generator) as url:
        gen = OpenAICompatGenerator(url, "tiny", settings=GenerationSettings(max_new_tokens=2))
        import httpx

        real_send = httpx.Client.send

        def send(self: httpx.Client, *a: Any, **kw: Any) -> httpx.Response:
            resp = real_send(self, *a, **kw)
            stream = resp.extensions.get("network_stream")
            ports.append(stream.get_extra_info("client_addr")[1] if stream else -1)
            return resp

        httpx.Client.send = send  # type: ignore[method-assign]
        try:
            gen.generate([PROMPT, PROMPT, PROMPT])
        finally:
            httpx.Client.send = real_send  # type: ignore[method-assign]
            gen.close()
    assert len(ports) == 3 and len(set(ports)) == 1, ports


# ---------------------------------------------------------------- vLLM's offline engine (a scripted stand-in)


@dataclass
class _Params:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    logprobs: int | None = None


@dataclass
class _Logprob:
    logprob: float
    decoded_token: str


@dataclass
class _Out:
    text: str
    finish_reason: str
    logprobs: list[dict[int, _Logprob]] | None = None


@dataclass
class _Request:
    outputs: list[_Out] = field(default_factory=list)


class _LLM:
    """What ehrmind uses of `vllm.LLM`: the constructor and `chat`; every call is recorded."""

    instances: list[_LLM] = []

    def __init__(self, model: str, seed: int = 0, **kwargs: Any):
        self.model, self.seed, self.kwargs, self.calls = model, seed, kwargs, []
        _LLM.instances.append(self)

    def chat(
        self, messages, sampling_params, *, use_tqdm, add_generation_prompt, continue_final_message, **kw
    ):
        self.calls.append((messages, sampling_params, add_generation_prompt, continue_final_message, kw))
        out = []
        for p in sampling_params:
            if p.logprobs:
                top = {1: _Logprob(-0.2, "yes"), 2: _Logprob(-1.9, "no")}
                out.append(_Request([_Out("x", "length", [top])]))
                continue
            texts = [
                f'<think>s{p.seed}k{k}</think><answer>{{"answer": {p.seed}}}</answer>' for k in range(p.n)
            ]
            out.append(_Request([_Out(t, "stop" if k else "length") for k, t in enumerate(texts)]))
        return out


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams, module.__version__ = _LLM, _Params, "0.0-test"
    monkeypatch.setitem(sys.modules, "vllm", module)
    _LLM.instances.clear()
    return _LLM.instances


def test_vllm_generator_groups_prefill_seeds_each_prompt_and_reports_finish(fake_vllm):
    settings = GenerationSettings(max_new_tokens=7, temperature=0.6, top_p=0.9, seed=5)
    gen = make_generator("org/model", settings, Backend.choose("vllm", vllm_options={"max_model_len": 4096}))
    (llm,) = fake_vllm
    assert llm.model == "org/model" and llm.seed == 5 and llm.kwargs == {"max_model_len": 4096}
    got = gen.generate([PROMPT, PREFILLED, PROMPT], n=2, seeds=[10, 11, 12])
    assert [t[0][:9] for t in got.completions] == ["<think>s1", "<think>s1", "<think>s1"]
    assert [t[1].split("</think>")[0] for t in got.completions] == [
        "<think>s10k1",
        "<think>s11k1",
        "<think>s12k1",
    ]
    assert got.finish_reasons == [["length", "stop"]] * 3
    (plain, p1, gp1, cont1, _), (pre, p2, gp2, cont2, _) = llm.calls
    assert plain == [PROMPT, PROMPT] and (gp1, cont1) == (True, False)
    assert pre == [PREFILLED] and (gp2, cont2) == (False, True)
    assert [(p.n, p.seed, p.max_tokens, p.temperature, p.top_p) for p in p1] == [
        (2, 10, 7, 0.6, 0.9),
        (2, 12, 7, 0.6, 0.9),
    ]
    assert gen.describe()["backend"] == "vllm"
    # the model's own P(yes) from the first answer token's top log-probabilities
    lp = gen.choice_logprobs(PROMPT, '<think>r</think><answer>{"eligible": ', ['"yes"', '"no"'])
    assert lp == [-0.2, -1.9] and llm.calls[-1][3] is True


def test_eval_with_vllm_resumes_identically(fake_vllm, tmp_path, synthetic_csv):
    out = tmp_path / "eval"
    args = [
        "eval",
        "--task",
        "medcalc",
        "--data",
        str(synthetic_csv),
        "--model",
        "org/model",
        "--out",
        str(out),
    ]
    args += ["--backend", "vllm", "--limit", "4", "--samples", "2", "--temperature", "0.5", "--seed", "7"]
    assert (r := CliRunner().invoke(app, args)).exit_code == 0, r.output
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[3])["completion"].startswith("<think>s8k1")
    assert json.loads(lines[0])["finish_reason"] == "length"
    (out / "predictions.jsonl").write_text("\n".join(lines[:5]) + "\n")
    assert (r := CliRunner().invoke(app, args)).exit_code == 0, r.output
    assert (out / "predictions.jsonl").read_text().splitlines() == lines
    resumed = fake_vllm[-1].calls
    assert [[p.seed for p in c[1]] for c in resumed] == [[9, 10]]  # the two examples with missing samples
    assert json.loads((out / "metrics.json").read_text())["run"]["backend"] == "vllm"


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available() or __import__("importlib").util.find_spec("vllm") is None,
    reason="GPU-only: the real vLLM engine needs a CUDA device and `pip install 'ehrmind[vllm]'`",
)
def test_real_vllm_matches_the_contract(tiny_model):
    settings = GenerationSettings(max_new_tokens=8, temperature=0.8, seed=3)
    gen = make_generator(
        str(tiny_model), settings, Backend.choose("vllm", vllm_options={"enforce_eager": True})
    )
    a = gen.generate([PROMPT, PREFILLED], n=3, seeds=[1, 2])
    b = gen.generate([PROMPT, PREFILLED], n=3, seeds=[1, 2])
    assert a == b and [len(x) for x in a.completions] == [3, 3]
    assert all(f in ("stop", "length") for fs in a.finish_reasons for f in fs)


def test_diagnose_and_matrix_run_against_an_endpoint(tmp_path, synthetic_csv):
    with Scripted(_reply_by_seed) as srv:
        args = ["diagnose", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(tmp_path / "d")]
        args += ["--model", "served", "--url", srv.url, "--k", "2", "--limit", "3", "--concurrency", "3"]
        assert (r := CliRunner().invoke(app, args)).exit_code == 0, r.output
        assert sorted((b["n"], b["seed"]) for b, _ in srv.requests) == [(2, 0), (2, 1), (2, 2)]
        info = json.loads((tmp_path / "d" / "reasoning" / "metrics.json").read_text())["run"]
        assert info["backend"] == "openai" and info["concurrency"] == 3
        srv.requests.clear()
        args = ["matrix", "--models", "served", "--tasks", "medcalc", "--data", f"medcalc={synthetic_csv}"]
        args += ["--out", str(tmp_path / "m"), "--url", srv.url, "--limit", "2"]
        assert (r := CliRunner().invoke(app, args)).exit_code == 0, r.output
        assert len(srv.requests) == 2 and (tmp_path / "m" / "matrix.md").exists()


def test_rationales_self_sampling_with_vllm(fake_vllm, tmp_path, synthetic_csv):
    args = ["rationales", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(tmp_path / "r")]
    args += ["--model", "org/model", "--self", "--backend", "vllm", "--limit", "2", "--samples", "2"]
    assert (r := CliRunner().invoke(app, args)).exit_code == 0, r.output
    assert fake_vllm[0].model == "org/model" and [p.n for p in fake_vllm[0].calls[0][1]] == [2, 2]
    wrong = ["rationales", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(tmp_path / "w")]
    wrong += ["--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "t", "--backend", "vllm"]
    r = CliRunner().invoke(app, wrong)
    assert r.exit_code == 2 and "--teacher-url is an endpoint" in r.output


def test_a_trained_folder_is_rendered_with_its_training_template_variables(tmp_path, synthetic_csv):
    """A model trained with chat_template_kwargs (e.g. enable_thinking: false) is evaluated with the same
    prompts: the folder's ehrmind_run.json supplies them unless the command gives others."""
    import ehrmind
    from ehrmind.generate.scripted import ScriptedGenerator

    folder = tmp_path / "sft"
    folder.mkdir()
    (folder / "ehrmind_run.json").write_text(
        json.dumps({"recipe": {"task": "medcalc", "chat_template_kwargs": {"enable_thinking": False}}})
    )
    assert Backend().for_model(str(folder)).chat_template_kwargs == {"enable_thinking": False}
    given = Backend.choose(chat_template_kwargs={"enable_thinking": True})
    assert given.for_model(str(folder)).chat_template_kwargs == {"enable_thinking": True}
    assert (
        Backend.choose(url="http://h:1/v1").for_model(str(folder)).chat_template_kwargs == {}
    )  # its server's
    seen = []
    backend = Backend(
        factory=lambda model, settings: seen.append(model) or ScriptedGenerator(lambda m, k, s: "x")
    )
    ehrmind.evaluate("medcalc", synthetic_csv, str(folder), tmp_path / "e", limit=2, backend=backend)
    run = json.loads((tmp_path / "e" / "metrics.json").read_text())["run"]
    assert run["chat_template_kwargs"] == {"enable_thinking": False} and seen == [str(folder)]


def test_hf_samples_with_the_settings_only_whatever_the_folders_generation_config_says(tmp_path, tiny_model):
    """A repetition penalty (or top-k, a default temperature) in a folder's generation_config.json changed
    transformers' output while vLLM ignored it: both now sample with ehrmind's settings only, and the run
    record lists what the folder set and was not applied."""
    import shutil

    from ehrmind.generate.hf import HFGenerator

    folder = tmp_path / "penalised"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(
        json.dumps({**config, "repetition_penalty": 1.3, "top_k": 5})
    )
    prompt = [[{"role": "user", "content": "Compute the FeverPAIN score of this patient."}]]
    settings = GenerationSettings(max_new_tokens=24)
    plain, penalised = HFGenerator(str(tiny_model), settings), HFGenerator(str(folder), settings)
    assert penalised.generate(prompt) == plain.generate(prompt)
    assert penalised.describe()["generation_config_ignored"] == {"repetition_penalty": 1.3, "top_k": 5}
    assert "generation_config_ignored" not in plain.describe()
    assert plain.describe()["stop_token_ids"] == [plain.tokenizer.eos_token_id]
    # sampling: temperature and top-p only, as vLLM; transformers would add its default top-k of 50
    sampled = HFGenerator(str(folder), GenerationSettings(temperature=0.6, top_p=0.95))
    assert sampled.describe()["sampling"] == {"temperature": 0.6, "top_p": 0.95, "top_k": 0}
    names = [type(w).__name__ for w in sampled._sampling_warpers(sampled.sampling())]
    assert names == ["TemperatureLogitsWarper", "TopPLogitsWarper"]


def test_backend_help_shows_the_extra_to_install():
    """Rich reads `[vllm]` as markup: the help must still print the whole install command."""
    from typer.testing import CliRunner

    from ehrmind.cli import app

    for command in ("eval", "rationales"):
        out = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
        assert "'ehrmind[vllm]'" in "".join(out.split()), command


def test_a_backend_plugs_in_from_outside(tmp_path, synthetic_csv):
    """Issue #27: backends are a registry — one registered from outside the package (here a test module, in
    a fresh process, found through an installed package's `ehrmind.backends` entry point) works from the
    command line like the built-in ones, with no edit to ehrmind."""
    import os
    import subprocess

    module = tmp_path / "site" / "echo_backend.py"
    module.parent.mkdir()
    module.write_text(
        "from ehrmind.generate.backends import register_backend\n"
        "from ehrmind.generate.scripted import ScriptedGenerator\n\n"
        "@register_backend('echo')\n"
        "def build(model, settings, backend):\n"
        "    return ScriptedGenerator(lambda m, k, s: '<think>x</think><answer>{\"answer\": 1}</answer>', model)\n"
    )
    dist = tmp_path / "site" / "echo_backend-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-backend\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ehrmind.backends]\necho = echo_backend\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    args = [sys.executable, "-m", "ehrmind", "eval", "--task", "medcalc", "--data", str(synthetic_csv)]
    args += ["--model", "anything", "--backend", "echo", "--limit", "3", "--out", str(tmp_path / "e")]
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((tmp_path / "e" / "metrics.json").read_text())["run"]
    assert run["backend"] == "echo" and run["n_examples"] == 3
    # flags that do not fit its kind are refused as for the built-in ones
    done = subprocess.run([*args[:-2], "--url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "u")],
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "apply to an endpoint" in done.stderr
    unknown = subprocess.run([*args[:-4], "--backend", "nope", "--out", str(tmp_path / "n")], env=env,
                             capture_output=True, text=True)  # fmt: skip
    assert unknown.returncode == 2 and "one of hf, vllm, openai, echo" in unknown.stderr
