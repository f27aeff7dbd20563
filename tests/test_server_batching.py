"""`ehrmind serve` batches concurrent requests (issue #14, item 2): real HTTP on 127.0.0.1, the tiny model.

A long batch window (`batch_wait_ms`) makes the grouping deterministic here; the server's default is a few
milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ehrmind.errors import ConfigError
from ehrmind.generate.hf import GenerationSettings
from ehrmind.generate.server import ChatBackend, ServerClosing, make_server

WINDOW_MS = 400.0
PROMPTS = [
    [{"role": "user", "content": "Serum creatinine 1.2 mg/dL. " * (1 + 3 * i) + "Compute the clearance."}]
    for i in range(8)
]
"""Eight prompts of different lengths: batching pads them on the left."""


@pytest.fixture(scope="module")
def generator(tiny_model):
    from ehrmind.generate.hf import HFGenerator

    return HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=12))


@contextlib.contextmanager
def serving(gen: Any, **kw: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, server) on a free loopback port; shut down and closed afterwards."""
    server = make_server(gen, "127.0.0.1", 0, model_name="tiny", **kw)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"{url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - loopback
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def together(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """POST all `bodies` at once (released by a barrier), replies in order."""
    barrier = threading.Barrier(len(bodies))

    def one(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        barrier.wait()
        return post(url, body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def text(reply: tuple[int, dict[str, Any]]) -> str:
    status, obj = reply
    assert status == 200, obj
    return obj["choices"][0]["message"]["content"]


def test_concurrent_greedy_requests_are_one_batch_with_the_sequential_text(generator):
    bodies = [{"messages": m, "max_tokens": 12, "temperature": 0} for m in PROMPTS]
    with serving(generator, max_batch=1) as (url, server):
        alone = [text(post(url, b)) for b in bodies]
        assert server.backend.batch_sizes == {1: 8}
    with serving(generator, batch_wait_ms=WINDOW_MS) as (url, server):
        replies = together(url, bodies)
        backend = server.backend
        # one generate call for all eight, left-padded: the same greedy text as each generated alone
        assert backend.batch_sizes == {8: 1} and backend.generate_calls == 1 and backend.requests_served == 8
        assert [text(r) for r in replies] == alone
        usage = [r[1]["usage"] for r in replies]
        assert all(u["prompt_tokens"] > 0 for u in usage)
        assert (
            len({u["prompt_tokens"] for u in usage}) == 8
        )  # each reply counts its own prompt, not the padding
    assert generator.settings.max_new_tokens == 12 and generator.settings.temperature == 0.0  # restored


def test_only_compatible_requests_share_a_call(generator):
    greedy = [{"messages": m, "max_tokens": 6, "temperature": 0} for m in PROMPTS[:3]]
    longer = [{"messages": m, "max_tokens": 8, "temperature": 0} for m in PROMPTS[3:5]]  # other max_tokens
    sampled = [{"messages": m, "max_tokens": 6, "temperature": 0.8, "n": 2} for m in PROMPTS[5:7]]  # no seed
    with serving(generator, batch_wait_ms=WINDOW_MS) as (url, server):
        replies = together(url, greedy + longer + sampled)
        assert all(status == 200 for status, _ in replies)
        assert [len(obj["choices"]) for _, obj in replies] == [1] * 5 + [2, 2]
        assert sorted(server.backend.batch_sizes.elements()) == [2, 2, 3]


def test_a_seeded_sampled_request_gives_the_same_text_alone_or_with_others(generator):
    seeded = {"messages": PROMPTS[2], "max_tokens": 12, "temperature": 1.0, "seed": 7, "n": 2}
    others = [{"messages": m, "max_tokens": 12, "temperature": 1.0} for m in PROMPTS[3:8]]
    with serving(generator, batch_wait_ms=WINDOW_MS) as (url, server):
        first = post(url, seeded)[1]["choices"]
        post(url, others[0])  # moves the generator's own call counter on
        again = post(url, seeded)[1]["choices"]
        crowded = together(url, [seeded, *others, {**seeded, "seed": 8}])
        assert crowded[0][0] == 200 and crowded[0][1]["choices"] == first == again
        assert crowded[-1][1]["choices"] != first  # another seed, other samples
        # the unseeded five shared one call; each seeded request was generated alone
        assert server.backend.batch_sizes[5] == 1


def test_a_prompt_too_long_for_the_context_fails_alone_in_its_batch(generator):
    long = [{"role": "user", "content": "1234567890" * 250}]  # a token per digit: over the 2,048 of context
    bodies = [{"messages": m, "max_tokens": 4, "temperature": 0} for m in [PROMPTS[0], long, PROMPTS[1]]]
    with serving(generator, batch_wait_ms=WINDOW_MS) as (url, server):
        replies = together(url, bodies)
        assert server.backend.batch_sizes == {1: 2}  # the batch of three failed; each was then tried alone
    assert [status for status, _ in replies] == [200, 400, 200]
    assert "exceeds the model's context" in replies[1][1]["error"]["message"]


class Failing:
    """A generator whose every call fails (a bug, out of memory, …)."""

    name = "broken"

    def __init__(self) -> None:
        self.settings = GenerationSettings(max_new_tokens=4)
        self.calls: list[int] = []

    def generate(self, prompts: list[Any], n: int = 1) -> list[list[str]]:
        self.calls.append(len(prompts))
        raise RuntimeError("boom")


def test_a_failing_batch_answers_every_waiting_client_with_an_error():
    gen = Failing()
    with serving(gen, batch_wait_ms=WINDOW_MS) as (url, _):
        replies = together(url, [{"messages": m, "max_tokens": 4, "temperature": 0} for m in PROMPTS[:4]])
    assert [status for status, _ in replies] == [500] * 4
    assert all(
        obj["error"] == {"message": "generation failed: RuntimeError", "type": "server_error", "code": 500}
        for _, obj in replies
    )
    assert gen.calls == [4, 1, 1, 1, 1]  # the batch, then each request alone for its own answer


def test_shutdown_stops_the_worker_and_refuses_new_work(generator):
    with serving(generator) as (url, server):
        assert text(post(url, {"messages": PROMPTS[0], "max_tokens": 2, "temperature": 0}))
        backend = server.backend
        assert backend.worker.is_alive()
    assert not backend.worker.is_alive()
    with pytest.raises(ServerClosing):
        backend.complete({"messages": PROMPTS[0], "max_tokens": 2})
    assert not [t for t in threading.enumerate() if t.name == "ehrmind-serve-worker" and t.is_alive()]


@pytest.mark.parametrize(
    "kw",
    [
        {"max_batch": 0},  # at least one
        {"max_batch": 2.5},  # a whole number
        {"batch_wait_ms": -1},  # no negative wait
        {"batch_wait_ms": float("nan")},
    ],
)
def test_batch_settings_are_checked(kw):
    with pytest.raises(ConfigError):
        ChatBackend(Failing(), **kw)
