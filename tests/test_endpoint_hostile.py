"""Issue #31: `ehrmind eval --url` against a misbehaving endpoint.

Each server here is a real loopback TCP server that writes its replies byte by byte as a hostile or broken
server would: one that stalls, trickles a byte at a time into its headers or body, asks to be retried in
10^9 seconds, sends a gzip bomb, JSON nested 100,000 deep, a lone surrogate, `content` that is a number or a
list of parts, choices without a message. Each run ends (the CLI runs in a thread joined with a generous
limit: a hang fails the test instead of holding the suite) with exit code 2 and one `error:` line naming the
endpoint without its credentials, or with the right predictions. The request deadline is set to 2 s here
(`REQUEST_DEADLINE_S`, 1,800 s by default).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.generate import openai_compat
from ehrmind.generate.openai_compat import EndpointError, OpenAICompatGenerator, model_entry
from ehrmind.generate.settings import GenerationSettings

PROMPT = [{"role": "user", "content": "What is 2 + 2?"}]
ANSWER = '<think>x</think><answer>{"answer": 1}</answer>'
FINISH_LIMIT_S = 60.0
"""A run that has not ended after this long is a hang (each one here ends in a few seconds)."""

Behaviour = Callable[[socket.socket, "Hostile"], None]


def http(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: application/json"]
    return ("\r\n".join([*head, *headers]) + "\r\n\r\n").encode() + body


def chat(*contents: Any, **choice: Any) -> bytes:
    """A chat completion whose choices hold `contents` as given (any JSON value)."""
    choices = [
        {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop", **choice}
        for i, c in enumerate(contents)
    ]
    return json.dumps({"object": "chat.completion", "choices": choices}).encode()


def answer(data: bytes, *headers: str) -> Behaviour:
    """Replies 200 with `data` as the body."""
    return lambda conn, server: conn.sendall(http(200, data, *headers))


class Hostile:
    """A loopback HTTP server: each POST gets `behaviour(conn, server)`, each GET a 404 (no model list) unless
    `on_get` is given. `stop` ends every stall and trickle when the test is done."""

    def __init__(self, behaviour: Behaviour, on_get: Behaviour | None = None):
        self.behaviour, self.on_get = behaviour, on_get
        self.stop = threading.Event()
        self.posts = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://alice:SECRET1@127.0.0.1:{self.port}/v1?key=SECRET2"

    def __enter__(self) -> Hostile:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client gave up: what these servers are for
            while not self.stop.is_set():
                method = self._read_request(conn)
                if method is None:
                    return
                if method == "POST":
                    self.posts += 1
                    self.behaviour(conn, self)
                elif self.on_get is not None:
                    self.on_get(conn, self)
                else:
                    conn.sendall(http(404, b'{"error": {"message": "no model list"}}'))

    @staticmethod
    def _read_request(conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        return head.split(b" ", 1)[0].decode()


def stall(conn: socket.socket, server: Hostile) -> None:
    """Accepts the request and never answers."""
    server.stop.wait()


def trickle_body(conn: socket.socket, server: Hostile) -> None:
    """Headers at once, then the body a byte at a time (never complete)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
    while not server.stop.wait(0.05):
        conn.sendall(b" ")


def trickle_headers(conn: socket.socket, server: Hostile) -> None:
    """The status line, then a header a byte at a time (every read gets a byte, none completes the reply)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not server.stop.wait(0.05):
        conn.sendall(b"a")


def gzip_bomb(size: int = 256 * 2**20) -> bytes:
    """A gzip body of ~250 KB that inflates to `size` zero bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header
    block = bytes(2**20)
    return b"".join([*(packer.compress(block) for _ in range(size // len(block))), packer.flush()])


def run_eval(url: str, tmp_path: Path, data: Path, *more: str) -> Any:
    """`ehrmind eval --url` in this process (so the test's deadline applies), in a thread joined with a
    limit: a hang fails here instead of holding the suite."""
    args = ["eval", "--task", "medcalc", "--data", str(data), "--url", url, "--model", "m"]
    args += ["--limit", "1", "--max-new-tokens", "8", "--out", str(tmp_path / "e"), *more]
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(CliRunner().invoke(app, args)), daemon=True)
    worker.start()
    worker.join(FINISH_LIMIT_S)
    assert done, f"ehrmind eval did not finish within {FINISH_LIMIT_S:.0f} s"
    return done[0]


def one_error(result: Any) -> str:
    """The run failed as a user error should: exit code 2, one `error:` line, no traceback, no credentials."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "SECRET" not in result.output, result.output
    return errors[0]


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(openai_compat, "REQUEST_DEADLINE_S", 2.0)


# ---------------------------------------------------------------- servers that would hang a run


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        # accepts, never answers: a per-read timeout of 120 s (or 1 s per token) used to apply, 5 times over
        (stall, "no complete reply within 2 s"),
        # a byte every 50 ms into the body: each read succeeded, so the read timeout never fired
        (trickle_body, "no complete reply within 2 s"),
        # the same inside the headers, before any response object exists
        (trickle_headers, "no complete reply within 2 s"),
    ],
    ids=["stall", "trickle-body", "trickle-headers"],
)
def test_a_server_that_never_finishes_its_reply_fails_the_run_at_the_deadline(
    behaviour, said, short_deadline, synthetic_csv, tmp_path
):
    with Hostile(behaviour) as server:
        result = run_eval(server.url, tmp_path, synthetic_csv)
    line = one_error(result)
    assert said in line and "deadline of 2 s" in line, line
    assert f"error: http://127.0.0.1:{server.port}/v1/chat/completions: " in line


def test_after_a_failure_prompts_not_yet_sent_are_not_sent(short_deadline):
    """With --concurrency the first request that fails stops the call; the queued prompts used to be sent
    anyway, each waiting out its own deadline against a stalled server."""
    with Hostile(stall) as server:
        gen = OpenAICompatGenerator(server.url, "m", concurrency=2)
        with pytest.raises(EndpointError, match="deadline of 2 s"):
            gen.generate([PROMPT] * 8)
    assert 2 <= gen.requests_sent < 8


@pytest.mark.parametrize(
    "retry_after",
    [
        "1000000000",  # 10^9 seconds: was capped at 600 s and waited, then again for each of 5 retries
        format_datetime(datetime.now(UTC) + timedelta(days=400), usegmt=True),  # a date next year
        "1e999",  # infinity
    ],
    ids=["seconds", "http-date", "infinite"],
)
def test_a_retry_after_beyond_what_is_waited_fails_at_once_naming_the_header(
    retry_after, short_deadline, synthetic_csv, tmp_path
):
    reply = http(429, b'{"error": {"message": "quota exceeded"}}', f"Retry-After: {retry_after}")
    with Hostile(lambda conn, server: conn.sendall(reply)) as server:
        result = run_eval(server.url, tmp_path, synthetic_csv)
    line = one_error(result)
    assert "HTTP 429 quota exceeded" in line and f"Retry-After: {retry_after[:60]!r}" in line, line
    assert "try again later" in line and server.posts == 1


def test_retry_after_within_limits_is_still_waited_for_and_past_the_cap_is_not():
    """The Python client: a Retry-After of 2 s is slept and retried (well-behaved servers keep working); one
    of 601 s (just past `MAX_RETRY_AFTER`) fails the request at once, without sleeping."""
    replies = [http(503, b"busy", "Retry-After: 2"), http(200, chat("ok"))]
    with Hostile(lambda conn, server: conn.sendall(replies.pop(0))) as server:
        gen = OpenAICompatGenerator(server.url, "m")
        sleeps: list[float] = []
        gen._sleep = sleeps.append
        assert gen.generate([PROMPT]).completions == [["ok"]] and sleeps == [2.0]
    with Hostile(lambda conn, server: conn.sendall(http(429, b"slow down", "Retry-After: 601"))) as server:
        gen = OpenAICompatGenerator(server.url, "m")
        gen._sleep = sleeps.append
        with pytest.raises(EndpointError, match=r"retry after 601 s .*longer than the 600 s waited at most"):
            gen.generate([PROMPT])
        assert server.posts == 1 and sleeps == [2.0]


def test_a_gzip_bomb_is_refused_at_the_size_limit(synthetic_csv, tmp_path):
    """~250 KB of gzip that inflates to 256 MB: reading stops at 16 MB decompressed (`MAX_REPLY_BYTES`)."""
    bomb = gzip_bomb()
    assert len(bomb) < 2**20
    with Hostile(answer(bomb, "Content-Encoding: gzip")) as server:
        result = run_eval(server.url, tmp_path, synthetic_csv)
    line = one_error(result)
    assert "larger than 16,777,216 bytes once decompressed" in line and "not retried" in line, line
    assert server.posts == 1


def test_one_gzip_encoding_is_read_stacked_ones_are_refused_unread(synthetic_csv, tmp_path):
    with Hostile(answer(gzip.compress(chat(ANSWER)), "Content-Encoding: gzip")) as server:
        result = run_eval(server.url, tmp_path / "one", synthetic_csv)
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "one" / "e" / "predictions.jsonl").read_text().splitlines()[0])
    assert row["completion"] == ANSWER
    # gzip inside gzip multiplies the ratios: one 64 KB read could inflate to gigabytes in one step
    twice = gzip.compress(gzip.compress(chat(ANSWER)))
    with Hostile(answer(twice, "Content-Encoding: gzip, gzip")) as server:
        line = one_error(run_eval(server.url, tmp_path, synthetic_csv))
    assert "the reply is encoded as 'gzip, gzip', not read" in line, line


# ---------------------------------------------------------------- replies that do not fit a chat completion


@pytest.mark.parametrize(
    ("body", "said"),
    [
        # 100,000 nested brackets: RecursionError from the JSON reader
        (b"[" * 100_000 + b"]" * 100_000, "the reply nests JSON too deep to read"),
        # content a number: was scored as the text "42"
        (chat(42), "choices[0].message.content should be a string or a list of text parts, got a number"),
        # content an object: was scored as its Python repr
        (
            chat({"text": "x"}),
            "choices[0].message.content should be a string or a list of text parts, got an object",
        ),
        # a part that is not an object with a type
        (
            chat(["x"]),
            "choices[0].message.content part 0 should be an object with a string type, got a string",
        ),
        # a text part whose text is not a string
        (
            chat([{"type": "text", "text": 7}]),
            "choices[0].message.content part 0 is a text part whose text is a number",
        ),
        # choices without message: were empty completions, scored wrong without a word
        (
            b'{"choices": [{"index": 0, "text": "hi", "finish_reason": "stop"}]}',
            "choices[0].message is missing",
        ),
        (
            b'{"choices": [{"index": 0, "message": "hi"}]}',
            "choices[0].message should be an object, got a string",
        ),
        # no choices at all, or not a list
        (b'{"object": "chat.completion"}', "the reply's choices is missing"),
        (
            b'{"choices": {"0": {"message": {"content": "x"}}}}',
            "the reply's choices should be a valid list, got an object",
        ),
        # the reply is a list, not an object
        (b"[1, 2]", "the reply should be an object, got a list"),
        # more choices than asked for (n=1)
        (chat(ANSWER, ANSWER), "the reply has 2 choices for n=1 asked"),
        # finish_reason a number or an object
        (
            chat(ANSWER, finish_reason=3),
            "choices[0].finish_reason should be a valid string, got a number",
        ),
        (
            chat(ANSWER, finish_reason="x" * 100),
            "choices[0].finish_reason string should have at most 64 characters",
        ),
        # an index that is not an integer
        (chat(ANSWER, index="0"), "choices[0].index should be a valid integer, got a string"),
    ],
    ids=[
        "deep-json",
        "content-number",
        "content-object",
        "part-not-object",
        "part-text-number",
        "no-message",
        "message-string",
        "no-choices",
        "choices-object",
        "reply-list",
        "too-many-choices",
        "finish-number",
        "finish-long",
        "index-string",
    ],
)
def test_a_reply_that_is_not_a_chat_completion_is_one_error_naming_the_field(
    body, said, short_deadline, synthetic_csv, tmp_path
):
    with Hostile(answer(body)) as server:
        result = run_eval(server.url, tmp_path, synthetic_csv)
    line = one_error(result)
    assert said in line and line.endswith("not retried"), line
    assert server.posts == 1  # a server that answers so answers so again: not retried
    assert (
        not (tmp_path / "e" / "predictions.jsonl").exists()
        or not (tmp_path / "e" / "predictions.jsonl").read_text().strip()
    )


def test_a_reply_that_is_not_json_is_still_retried_then_named(short_deadline, synthetic_csv, tmp_path):
    # a proxy's HTML page may pass: retried (1 s backoff), then the 2 s deadline ends it
    with Hostile(answer(b"<html>bad gateway</html>")) as server:
        line = one_error(run_eval(server.url, tmp_path, synthetic_csv))
    assert "the reply is not JSON" in line and "deadline of 2 s" in line, line
    assert server.posts == 2


@pytest.mark.parametrize(
    ("content", "text"),
    [
        # a lone surrogate: json gives a str UTF-8 cannot write; the row failed to be saved
        ('"\\ud800' + json.dumps(ANSWER)[1:], "\ufffd" + ANSWER),
        # OpenAI's multi-part content: the text parts joined, others (a refusal, an image) left out
        (
            json.dumps(
                [
                    {"type": "text", "text": ANSWER[:9]},
                    {"type": "image_url"},
                    {"type": "text", "text": ANSWER[9:]},
                ]
            ),
            ANSWER,
        ),
    ],
    ids=["lone-surrogate", "text-parts"],
)
def test_content_that_is_text_is_read_and_written(content, text, synthetic_csv, tmp_path):
    body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": %s}, "finish_reason": "stop"}]}'
    with Hostile(answer(body % content.encode())) as server:
        result = run_eval(server.url, tmp_path, synthetic_csv)
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "e" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert row["completion"] == text and row["finish_reason"] == "stop"
    # beside it, as before: a surrogate pair is one character, kept; null content (a tool call) is ""
    pair = b'{"choices": [{"message": {"content": "\\ud83d\\ude00"}}, {"message": {"content": null}}]}'
    assert openai_compat.chat_choices(pair, n=2) == [("\U0001f600", None), ("", None)]


def test_an_error_reply_nested_deep_or_with_terminal_escapes_gives_a_clean_excerpt(synthetic_csv, tmp_path):
    """A 400 whose body is 100,000 nested brackets used to raise RecursionError while quoting it; terminal
    escapes and a lone surrogate in a server's message are shown as plain text on the one line."""
    deep = b'{"error": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with Hostile(lambda conn, server: conn.sendall(http(400, deep))) as server:
        line = one_error(run_eval(server.url, tmp_path, synthetic_csv))
    assert "refused the request: HTTP 400" in line, line
    escapes = b'{"error": {"message": "bad\\u001b[31m red\\nnew line \\ud800 x"}}'
    with Hostile(lambda conn, server: conn.sendall(http(400, escapes))) as server:
        line = one_error(run_eval(server.url, tmp_path, synthetic_csv))
    assert line.endswith("HTTP 400: bad [31m red new line \ufffd x"), line


def test_logprobs_replies_are_checked_too():
    top = {"token": "yes", "logprob": "high", "top_logprobs": []}
    body = json.dumps({"choices": [{"logprobs": {"content": [top]}}]}).encode()
    with Hostile(answer(body)) as server:
        gen = OpenAICompatGenerator(server.url, "m", logprobs=True)
        with pytest.raises(
            EndpointError,
            match=r"choices\[0\]\.logprobs\.content\[0\]\.logprob should be a valid number",
        ):
            gen.choice_logprobs(PROMPT, "<answer>", ['yes"', 'no"'])
    surrogate = b'{"choices": [{"logprobs": {"content": [{"token": "\\udc80", "logprob": -1, "top_logprobs": [{"token": "\\udc80y", "logprob": -0.5}]}]}}]}'
    with Hostile(answer(surrogate)) as server:
        gen = OpenAICompatGenerator(server.url, "m", logprobs=True)
        assert openai_compat._top_logprobs(surrogate) == [("\ufffdy", -0.5)]


# ---------------------------------------------------------------- the model list (asked before an eval)


PADDED_LIST = gzip.compress(b'{"data": [{"id": "m"}]}' + b" " * (64 * 2**20))
"""A model list that is valid JSON, padded with 64 MB of spaces (64 KB of gzip)."""


@pytest.mark.parametrize(
    "on_get",
    [
        # a byte at a time, in the body or the headers: every read got one, so the 10 s read timeout never fired
        trickle_body,
        trickle_headers,
        # inflates past MAX_REPLY_BYTES: was read whole (and an entry found in it)
        answer(PADDED_LIST, "Content-Encoding: gzip"),
        # RecursionError, TypeError: tracebacks from a list that is optional
        answer(b"[" * 100_000),
        answer(b'{"data": 5}'),
    ],
    ids=["trickle-body", "trickle-headers", "gzip-bomb", "deep-json", "data-number"],
)
def test_a_hostile_model_list_is_no_model_list(on_get, monkeypatch):
    """`/v1/models` is optional: whatever a server does there ends within the time given, as None."""
    monkeypatch.setattr(openai_compat, "MAX_REPLY_BYTES", 2**20)
    with Hostile(answer(chat("x")), on_get=on_get) as server:
        assert model_entry(server.url, "m", timeout=1.0) is None


# ---------------------------------------------------------------- sampling settings


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--temperature", "nan"], "--temperature"),
        (["--temperature", "inf"], "temperature must be a finite number, got inf"),
        (["--temperature", "-1"], "--temperature"),
        (["--top-p", "1.5"], "--top-p"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--max-new-tokens", "10000000000"], "--max-new-tokens"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_sampling_flags_out_of_range_are_refused_before_anything_runs(flags, said, synthetic_csv, tmp_path):
    # they used to be accepted and recorded in run.json (temperature NaN sent to the endpoint)
    with Hostile(answer(chat(ANSWER))) as server:
        result = run_eval(server.url, tmp_path, synthetic_csv, *flags)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert said in result.output and server.posts == 0, result.output
    assert not (tmp_path / "e" / "run.json").exists()


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"temperature": float("nan")}, "temperature must be a finite number, got nan"),
        ({"temperature": float("inf")}, "temperature must be a finite number, got inf"),
        ({"top_p": float("nan")}, "top_p must be a finite number"),
        ({"temperature": "0.5"}, "temperature must be a finite number, got '0.5'"),
        ({"max_new_tokens": 10**12}, "max_new_tokens must be at most 1,048,576"),
        ({"seed": -1}, "seed must be an integer from 0 to 2**63 - 1, got -1"),
        ({"seed": 10**5000}, "got an integer too long to show"),
    ],
)
def test_generation_settings_refuse_what_the_command_line_refuses(changes, said):
    with pytest.raises(ConfigError, match=re.escape(said)):
        GenerationSettings(**changes)


def test_generator_limits_are_checked():
    for kw in (
        {"deadline": 0},
        {"deadline": float("inf")},
        {"timeout": float("nan")},
        {"max_reply_bytes": 0},
    ):
        with pytest.raises(ConfigError, match="deadline"):
            OpenAICompatGenerator("http://127.0.0.1:9/v1", "m", **kw)
