"""The OpenAI-compatible client (retries, backoff, errors without patient text) and `ehrmind serve`.

Everything runs against real HTTP servers on 127.0.0.1: a scripted one (http.server, below) and
`ehrmind.generate.server` serving the tiny local model.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ehrmind import Example, get_task
from ehrmind.errors import ConfigError
from ehrmind.generate.hf import GenerationSettings
from ehrmind.generate.openai_compat import (
    EndpointError,
    OpenAICompatGenerator,
    parse_retry_after,
    public_url,
)
from ehrmind.tasks.ehrshot.analyses import YesProbability

PATIENT = (
    "A 58-year-old woman with metastatic triple-negative breast cancer, previously treated with paclitaxel."
)
PROMPT = [
    {"role": "system", "content": "You screen patients for trials."},
    {"role": "user", "content": f"Patient: {PATIENT}\nIs she eligible?"},
]

Reply = tuple[int, dict[str, str], Any]
"""(status, headers, body): a dict/list body is sent as JSON, bytes as is."""


def completion(*texts: str, indices: list[int] | None = None) -> dict[str, Any]:
    idx = indices or list(range(len(texts)))
    return {
        "object": "chat.completion",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in zip(idx, texts, strict=True)
        ],
    }


class Scripted:
    """A loopback HTTP server whose replies come from `reply(body, headers)`; records every request."""

    def __init__(self, reply: Callable[[dict[str, Any], dict[str, str]], Reply]):
        self.reply = reply
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = dict(self.headers.items())
                with outer.lock:
                    outer.requests.append((body, headers))
                    outer.paths.append(self.path)
                    status, extra, payload = outer.reply(body, headers)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Scripted:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def sequence(*replies: Reply) -> Callable[[dict[str, Any], dict[str, str]], Reply]:
    """Replies in order; the last one repeats."""
    queue = list(replies)
    return lambda body, headers: queue.pop(0) if len(queue) > 1 else queue[0]


@contextlib.contextmanager
def serving(generator: Any, name: str = "tiny") -> Iterator[str]:
    """`ehrmind.generate.server` over `generator` on a free loopback port; yields the base URL."""
    from ehrmind.generate.server import make_server

    server = make_server(generator, "127.0.0.1", 0, model_name=name)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, **kw: Any) -> tuple[OpenAICompatGenerator, list[float]]:
    """A generator whose backoff sleeps are recorded instead of slept."""
    kw.setdefault("settings", GenerationSettings(max_new_tokens=32, temperature=0.5, top_p=0.9))
    gen = OpenAICompatGenerator(url, "teacher-x", **kw)
    sleeps: list[float] = []
    gen._sleep = sleeps.append
    return gen, sleeps


# ---------------------------------------------------------------- the client against a scripted server


def test_request_body_order_of_choices_and_key():
    with Scripted(sequence((200, {}, completion("second", "first", indices=[1, 0])))) as srv:
        gen, sleeps = client(srv.url, api_key="sk-secret-123")
        assert gen.generate([PROMPT], n=2).completions == [["first", "second"]]
    body, headers = srv.requests[0]
    assert body == {
        "model": "teacher-x",
        "messages": PROMPT,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 32,
        "n": 2,
        "seed": 0,
    }
    assert headers["Authorization"] == "Bearer sk-secret-123" and not sleeps
    assert "sk-secret" not in repr(gen)


def test_503_then_success_honours_retry_after():
    replies = sequence(
        (503, {"Retry-After": "3"}, {"error": {"message": "overloaded"}}),
        (200, {}, completion("ok")),
    )
    with Scripted(replies) as srv:
        gen, sleeps = client(srv.url, backoff=0.25)
        assert gen.generate([PROMPT]).completions == [["ok"]]
    assert len(srv.requests) == 2 and gen.requests_sent == 2
    assert sleeps == [3.0]  # the server's Retry-After, not the backoff


def test_exponential_backoff_then_gives_up():
    with Scripted(sequence((500, {}, b"internal error"))) as srv:
        gen, sleeps = client(srv.url, max_retries=3, backoff=0.5, max_backoff=1.5)
        with pytest.raises(EndpointError, match=r"HTTP 500 internal error; gave up after 4 attempt") as e:
            gen.generate([PROMPT])
    assert e.value.status == 500 and len(srv.requests) == 4
    assert sleeps == [0.5, 1.0, 1.5]  # 0.5 * 2**k, capped at max_backoff


def test_429_is_retried_and_malformed_reply_too():
    replies = sequence(
        (429, {}, {"error": {"message": "rate limit"}}), (200, {}, b"<html>"), (200, {}, completion("x"))
    )
    with Scripted(replies) as srv:
        gen, sleeps = client(srv.url, backoff=0.1)
        assert gen.generate([PROMPT]).completions == [["x"]]
    assert len(srv.requests) == 3 and sleeps == [0.1, 0.2]


def test_400_fails_at_once_with_status_and_no_patient_text():
    # servers sometimes echo the prompt in their error: the excerpt keeps the message, not the note
    echo = {"error": {"message": f"This model's maximum context length is 4096 tokens. Prompt: {PATIENT}"}}
    with Scripted(sequence((400, {}, echo))) as srv:
        gen, sleeps = client(srv.url, api_key="sk-secret-123")
        with pytest.raises(EndpointError) as e:
            gen.generate([PROMPT])
    msg = str(e.value)
    assert e.value.status == 400 and len(srv.requests) == 1 and not sleeps
    assert "HTTP 400" in msg and "maximum context length is 4096 tokens" in msg
    assert "triple-negative" not in msg and "paclitaxel" not in msg and "sk-secret" not in msg


def test_404_hints_at_v1():
    with Scripted(sequence((404, {}, {"error": {"message": "not found"}}))) as srv:
        gen, _ = client(srv.url.removesuffix("/v1"))
        with pytest.raises(EndpointError, match=r"HTTP 404 \(the base URL usually ends in /v1\)"):
            gen.generate([PROMPT])


def test_connection_refused_is_retried():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen, sleeps = client(f"http://127.0.0.1:{port}/v1", max_retries=2, backoff=0.01)
    with pytest.raises(EndpointError, match="no reply") as e:
        gen.generate([PROMPT])
    assert e.value.status is None and gen.requests_sent == 3 and sleeps == [0.01, 0.02]


def test_fewer_choices_than_n_are_requested_again():
    with Scripted(sequence((200, {}, completion("one")))) as srv:  # a provider that ignores n
        gen, _ = client(srv.url)
        assert gen.generate([PROMPT, PROMPT], n=3).completions == [["one"] * 3, ["one"] * 3]
    assert [b["n"] for b, _ in srv.requests] == [3, 2, 1, 3, 2, 1]


def test_concurrent_requests_keep_prompt_order():
    def echo(body, headers):
        time.sleep(0.02 * (5 - int(body["messages"][0]["content"])))  # later prompts answer sooner
        return 200, {}, completion(body["messages"][0]["content"])

    with Scripted(echo) as srv:
        gen, _ = client(srv.url, concurrency=3)
        prompts = [[{"role": "user", "content": str(i)}] for i in range(5)]
        assert gen.generate(prompts).completions == [[str(i)] for i in range(5)]
    assert gen.requests_sent == 5


def test_a_slow_reply_within_the_per_token_budget_is_waited_for_not_retried():
    """Issue #26, item 5: 120 s per request was too short for a CPU server queueing sampled requests, and
    each timeout became a retry the server then generated twice. The read timeout grows with max_tokens."""

    def slow(body, headers):
        time.sleep(1.5)
        return 200, {}, completion("late")

    with Scripted(slow) as srv:
        gen, sleeps = client(srv.url, timeout=1.0)  # max_new_tokens 32: 32 s to reply
        assert gen.generate([PROMPT]).completions == [["late"]]
    assert gen.requests_sent == 1 and not sleeps
    assert gen.read_timeout(32) == 32.0 and gen.read_timeout(1) == 1.0  # at least `timeout`
    assert OpenAICompatGenerator("http://h/v1", "m").read_timeout(1024) > 120


def test_a_failure_that_would_repeat_is_not_retried():
    # https to a plain-HTTP port fails the TLS handshake the same way every time
    with Scripted(sequence((200, {}, completion("x")))) as srv:
        gen, sleeps = client(srv.url.replace("http://", "https://"), max_retries=3)
        with pytest.raises(EndpointError, match="not retried") as e:
            gen.generate([PROMPT])
    assert e.value.status is None and gen.requests_sent == 1 and not sleeps


def test_the_client_does_not_log_each_request(caplog, monkeypatch):
    # httpx logs one INFO line per request ("HTTP Request: POST …"): noise in an evaluation's log
    import logging

    for name in ("httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    with caplog.at_level(logging.INFO), Scripted(sequence((200, {}, completion("x")))) as srv:
        gen, _ = client(srv.url)
        gen.generate([PROMPT, PROMPT])
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert logging.getLogger("httpx").level == logging.WARNING


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),  # delta-seconds
        ("0", 0.0),
        ("-3", 0.0),  # never negative
        ("1e9", 1e9),  # as asked: the retry loop refuses a wait beyond MAX_RETRY_AFTER
        ("nan", None),  # unreadable
        ("soon", None),  # unreadable: fall back to backoff
        (None, None),  # absent
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after({"Retry-After": value} if value is not None else {}) == expected


def test_parse_retry_after_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after({"Retry-After": when}) <= 30


def test_url_checks():
    with pytest.raises(ConfigError, match="http"):
        OpenAICompatGenerator("ftp://example.org/v1", "m")
    assert public_url("https://user:pw@api.example.org:8443/v1/chat/completions?x=1") == (
        "https://api.example.org:8443/v1/chat/completions"
    )


# ---------------------------------------------------------------- `ehrmind serve` over the tiny model


@pytest.fixture(scope="module")
def tiny_generator(tiny_model):
    from ehrmind.generate.hf import HFGenerator

    return HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=8))


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback
        return json.loads(r.read())


def test_server_over_tiny_model(tiny_generator):
    with serving(tiny_generator) as url:
        assert [m["id"] for m in _get(f"{url}/models")["data"]] == ["tiny"]
        gen, _ = client(url, settings=GenerationSettings(max_new_tokens=8, temperature=0.9))
        outs = gen.generate([PROMPT, PROMPT[:1] + [{"role": "user", "content": "Hi"}]], n=2).completions
        assert len(outs) == 2 and all(len(o) == 2 and all(isinstance(t, str) for t in o) for o in outs)
        # a prefill (final assistant message) is continued
        assert len(gen.generate([[*PROMPT, {"role": "assistant", "content": "<think>"}]]).completions[0]) == 1
        # a request the server refuses is a 400, not retried
        bad, sleeps = client(url, settings=GenerationSettings(max_new_tokens=8, temperature=0.0))
        with pytest.raises(EndpointError, match="HTTP 400.*temperature") as e:
            bad.generate([PROMPT], n=2)
        assert e.value.status == 400 and bad.requests_sent == 1 and not sleeps
    # the server's own settings are restored after each request
    assert tiny_generator.settings.max_new_tokens == 8 and tiny_generator.settings.temperature == 0.0


def _raw(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    """POST raw bytes (json.dumps would refuse some of the hostile bodies)."""
    req = urllib.request.Request(
        f"{url}/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    return _raw(url, json.dumps(body).encode())


def test_server_reply_and_request_validation(tiny_generator):
    with serving(tiny_generator) as url:
        status, obj = _post(url, {"messages": PROMPT, "max_tokens": 4, "temperature": 0})
        assert status == 200 and obj["object"] == "chat.completion" and obj["model"] == "tiny"
        assert obj["choices"][0]["message"]["role"] == "assistant"
        assert 0 < obj["usage"]["completion_tokens"] <= 4 and obj["usage"]["prompt_tokens"] > 10
        for body, problem in [
            ({"messages": []}, "non-empty list"),
            ({"messages": PROMPT, "stream": True}, "streaming"),
            ({"messages": PROMPT, "n": 0}, "'n'"),
            ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
            ({"messages": PROMPT, "temperature": -1}, "temperature"),
            ([1, 2], "JSON object"),
        ]:
            status, obj = _post(url, body)
            assert status == 400 and problem in obj["error"]["message"], (body, obj)


def test_server_refuses_hostile_requests_with_a_4xx(tiny_generator):
    """Issue #16, cause 11: a 10 MB prompt was tokenized for 39 s before being refused; deep JSON closed the
    connection without a reply; seed 10^30 and non-string content parts gave 500; NaN temperature was
    accepted. Each is now a 4xx naming the problem, returned at once."""
    with serving(tiny_generator) as url:
        started = time.perf_counter()
        status, obj = _post(url, {"messages": [{"role": "user", "content": "word " * 800_000}]})
        assert status == 400 and "cannot fit the model's context" in obj["error"]["message"]
        assert time.perf_counter() - started < 5  # refused before tokenizing (it took 39 s)
        deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert _raw(url, deep)[0] == 400 and "nests deeper" in _raw(url, deep)[1]["error"]["message"]
        for body, problem in [
            (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "'temperature'"),
            (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}', "'temperature'"),
            (b'{"messages": [{"role": "user", "content": "hi"}], "top_p": 0}', "'top_p'"),
            (
                b'{"messages": [{"role": "user", "content": "hi"}], "seed": 1000000000000000000000000000000}',
                "'seed'",
            ),
            (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5}', "'max_tokens'"),
            (b'{"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]}', "string 'text'"),
            (b'{"messages": [{"role": "user", "content": "hi"}', "not JSON"),
        ]:
            status, obj = _raw(url, body)
            assert status == 400 and problem in obj["error"]["message"], (body, obj)
        # text parts are still read; other parts (an image) are skipped
        parts = [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "x"}}]
        assert _post(url, {"messages": [{"role": "user", "content": parts}], "max_tokens": 2})[0] == 200


def test_server_bounds_connections_and_drops_stalled_clients(tiny_generator, monkeypatch):
    """Issue #16, cause 11: 20 concurrent clients were all accepted (2.9 GB, 4 timed out at 600 s) and a
    client that stopped sending held its thread forever. Now a connection beyond the bound gets 503 at once
    and a stalled one is dropped after the read timeout, freeing its slot."""
    from ehrmind.generate import server as srv

    monkeypatch.setattr(srv, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(srv, "READ_TIMEOUT_S", 1.0)
    with serving(tiny_generator) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        stalled = []
        for _ in range(2):  # two clients that announce a body and never send it
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(sock)
        time.sleep(0.2)
        started = time.perf_counter()
        status, obj = _post(url, {"messages": PROMPT, "max_tokens": 2, "temperature": 0})
        assert status == 503 and obj["error"]["type"] == "server_busy" and time.perf_counter() - started < 1
        time.sleep(1.5)  # the read timeout drops both stalled clients
        assert _post(url, {"messages": PROMPT, "max_tokens": 2, "temperature": 0})[0] == 200
        for sock in stalled:
            sock.close()


@pytest.mark.slow  # the `ehrmind serve` process itself (in-process server: the tests above)
def test_serve_command(tiny_model):
    """`ehrmind serve --port 0` in a subprocess: prints its URL, answers, stops on SIGTERM."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ehrmind", "serve", "--model", str(tiny_model), "--port", "0", "--name", "t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "serving" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line and proc.poll() is not None:
                break
        assert "serving t at http://127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
        url = line.split(" at ")[1].split()[0]
        assert _get(f"{url}/models")["data"][0]["id"] == "t"
        gen, _ = client(url, settings=GenerationSettings(max_new_tokens=4))
        assert len(gen.generate([PROMPT]).completions[0]) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_eval_against_an_endpoint(tiny_generator, synthetic_csv, tmp_path):
    # `ehrmind eval --url` scores an OpenAI-compatible endpoint with the same runner and verifier
    from typer.testing import CliRunner

    from ehrmind.cli import app

    out = tmp_path / "eval"
    with serving(tiny_generator) as url:
        args = [
            "eval",
            "--task",
            "medcalc",
            "--data",
            str(synthetic_csv),
            "--model",
            "tiny",
            "--url",
            url,
            "--out",
            str(out),
            "--limit",
            "3",
            "--max-new-tokens",
            "8",
            "--concurrency",
            "3",
        ]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["1", "2", "3"]  # in data order, whatever finished first
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["model"] == "tiny" and run["concurrency"] == 3
    # the server's finish reasons reach the rows: the truncation rate of an endpoint run
    assert all(json.loads(x)["finish_reason"] in ("stop", "length") for x in lines)


# ---------------------------------------------------------------- the model's own P(yes) from an endpoint (#12)


def test_first_token_logprobs_rules():
    from ehrmind.generate.openai_compat import first_token_logprobs

    top = [("yes", -0.2), ("y", -1.5), ("no", -2.0), ("maybe", -3.0)]
    assert first_token_logprobs(top, ['yes"', 'no"']) == [-0.2, -2.0]
    assert first_token_logprobs([("y", -0.5), ("n", -1.0)], ['yes"', 'no"']) == [-0.5, -1.0]  # shorter tokens
    # a choice not listed gets the lowest listed log-probability (an upper bound on its own)
    assert first_token_logprobs([("yes", -0.1), ("maybe", -4.0)], ['yes"', 'no"']) == [-0.1, -4.0]
    assert first_token_logprobs([("maybe", -0.1)], ['yes"', 'no"']) is None  # neither: no probability
    assert first_token_logprobs([("yes", float("nan"))], ['yes"', 'no"']) is None


def _ehrshot_case():
    task = get_task("ehrshot")
    ex = Example(
        id="1@t",
        task="ehrshot",
        input={
            "timeline": "Prediction time: 2020-01-01\n- Hypertension, 2019-05-01",
            "question": "New hypertension?",
        },
        target={"label": True, "label_name": "yes"},
        metadata={"labeler": "new_hypertension", "category": "new_hypertension", "label": True},
    )
    completion = '<think>BP high</think>\n<answer>{"prediction": "yes"}</answer>'
    return task, ex, completion


def test_endpoint_logprobs_give_the_models_own_p_yes(tiny_generator):
    """Issue #12, item 8 for endpoints: with `logprobs=True` the client continues the completion up to its
    answer and reads the first answer token's top log-probabilities; through `ehrmind serve` on loopback
    they equal the tiny model's own next-token distribution, and P(yes) follows from them."""
    from ehrmind.eval.runner import model_probability
    from ehrmind.generate.openai_compat import first_token_logprobs

    task, ex, completion = _ehrshot_case()
    prefix, choices = YesProbability().point(task, ex, completion)
    continued = [*task.render(ex), {"role": "assistant", "content": prefix + '"'}]
    top = tiny_generator.next_token_logprobs(continued, 20)
    # a random model rarely ranks "yes" or "no" in its top 20: choices built from its own list test the
    # plumbing exactly (the shared opening quote is moved into the continuation, as for "yes" / "no")
    listed = ['"' + top[0][0] + "…", '"' + top[7][0]]
    with serving(tiny_generator) as url:
        off, _ = client(url)
        assert model_probability(task, off, ex, completion) is None and off.requests_sent == 0
        on, _ = client(url, logprobs=True)
        assert on.choice_logprobs(task.render(ex), prefix, listed) == pytest.approx(
            [top[0][1], top[7][1]], abs=1e-5
        )
        p = model_probability(task, on, ex, completion)
        assert on.requests_sent == 2
    direct = first_token_logprobs(top, ['yes"', 'no"'])
    if direct is None:
        assert p is None  # neither answer in the top 20: no probability, the row falls back to its vote
    else:
        assert p == pytest.approx(1 / (1 + math.exp(direct[1] - direct[0])), abs=1e-5)


def test_endpoint_without_logprobs_is_a_clear_error_and_serve_bounds_them(tiny_generator):
    task, ex, text = _ehrshot_case()
    prefix, choices = YesProbability().point(task, ex, text)
    with Scripted(lambda body, headers: (200, {}, completion("yes"))) as server:
        gen, _ = client(server.url, logprobs=True)
        with pytest.raises(EndpointError, match="does not return log-probabilities"):
            gen.choice_logprobs(task.render(ex), prefix, [choices["yes"], choices["no"]])
        body = server.requests[0][0]
        assert body["logprobs"] is True and body["max_tokens"] == 1 and body["continue_final_message"] is True
        assert body["messages"][-1] == {"role": "assistant", "content": prefix + '"'}
    with serving(tiny_generator) as url:
        status, obj = _post(url, {"messages": PROMPT, "logprobs": True, "max_tokens": 4})
        assert status == 400 and "one token only" in obj["error"]["message"]
        status, obj = _post(url, {"messages": PROMPT, "logprobs": True, "top_logprobs": 50, "max_tokens": 1})
        assert status == 400 and "'top_logprobs'" in obj["error"]["message"]


def test_credentials_in_the_url_reach_the_server_and_no_log_or_record(tmp_path, synthetic_csv):
    """Issue #31: a key passed as `?key=…` stays a query parameter (it used to end up inside the request
    path), and neither it nor `user:password@` appears in any log line — httpx's included, with --verbose —
    or in the run's files."""
    from typer.testing import CliRunner

    from ehrmind.cli import app

    answer = completion('<think>x</think><answer>{"answer": 1}</answer>')
    with Scripted(sequence((200, {}, answer))) as srv:
        url = srv.url.replace("http://", "http://alice:SECRET1@") + "?key=SECRET2&api_key=SECRET3"
        args = ["-v", "eval", "--task", "medcalc", "--data", str(synthetic_csv), "--url", url]
        args += ["--model", "m", "--limit", "2", "--out", str(tmp_path / "e")]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert srv.paths and all(p == "/v1/chat/completions?key=SECRET2&api_key=SECRET3" for p in srv.paths)
    files = [f for f in (tmp_path / "e").iterdir() if f.suffix in (".json", ".jsonl", ".md")]
    written = [result.output] + [f.read_text() for f in files]
    assert not any(f"SECRET{i}" in text for text in written for i in (1, 2, 3))


def test_the_log_handler_masks_what_any_library_logs():
    """httpx logs `HTTP Request: POST <url>` with the URL as an argument: the filter on ehrmind's handler
    masks the formatted line, whoever logged it."""
    import logging

    from ehrmind.cli.common import RedactSecrets

    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
        ("POST", "http://alice:pw@h:9/v1/chat/completions?key=k", "HTTP/1.1 200 OK"), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert (
        record.getMessage()
        == 'HTTP Request: POST http://***@h:9/v1/chat/completions?key=*** "HTTP/1.1 200 OK"'
    )


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        # user and password in a URL
        ("POST http://alice:pw@host:9/v1 ok", "POST http://***@host:9/v1 ok"),
        # secret-looking query parameters, other parameters kept
        ("GET https://h/v1/models?key=k1&n=2&token=t2", "GET https://h/v1/models?key=***&n=2&token=***"),
        # a bearer token in a header dump
        ("Authorization: Bearer sk-abc.def", "Authorization: Bearer ***"),
        # prose that only looks like key=value is left alone
        ("set key=value in the recipe", "set key=value in the recipe"),
    ],
)
def test_log_lines_are_redacted(text, clean):
    from ehrmind.cli.common import redact

    assert redact(text) == clean
