"""`ehrmind serve` batches concurrent requests (issue #14, item 2): real HTTP on 127.0.0.1, the tiny model.

A long batch window (`batch_wait_ms`) makes the grouping deterministic here; the server's default is a few
milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ehrmind.errors import ConfigError
from ehrmind.generate.base import Capabilities, Generated
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
        assert first[0]["message"] != first[1]["message"]  # the two samples of one request differ
        # the unseeded five shared one call, the two seeded ones (same settings, other seeds) another
        assert server.backend.batch_sizes[5] == 1 and server.backend.batch_sizes[2] == 1


def choices(reply: tuple[int, dict[str, Any]]) -> list[str]:
    status, obj = reply
    assert status == 200, obj
    return [c["message"]["content"] for c in obj["choices"]]


def test_concurrent_seeded_sampled_requests_are_one_batch_sampled_as_alone(generator):
    """Issue #26, item 5: `ehrmind eval --url --temperature 0.6` sends every request a seed, and the server
    generated each alone (24 prompts x 2 samples: 10.5 min against 31 s greedy). Seeded requests with the
    same settings now share a call, and each row samples from its own seed: the same completions alone, in
    a batch of 8, and beside other neighbours (other seeds, other prompt lengths, so other left padding)."""
    bodies = [
        {"messages": m, "max_tokens": 12, "temperature": 0.6, "top_p": 0.95, "seed": 100 + i, "n": 2}
        for i, m in enumerate(PROMPTS)
    ]
    with serving(generator, max_batch=1) as (url, server):
        alone = [choices(post(url, b)) for b in bodies]
        assert server.backend.batch_sizes == {1: 8}
    with serving(generator, max_batch=16, batch_wait_ms=WINDOW_MS) as (url, server):
        crowded = together(url, bodies)
        assert server.backend.batch_sizes == {8: 1}  # eight requests, sixteen rows: one generate call
        # the short prompts beside others: other seeds, less padding, other rows
        mixed = together(url, [{**b, "seed": 900 + i} for i, b in enumerate(bodies[4:])] + bodies[:4])
        assert server.backend.generate_calls == 2
    assert [choices(r) for r in crowded] == alone
    assert [choices(r) for r in mixed[4:]] == alone[:4]
    assert len({t for pair in alone for t in pair}) > 8  # sampled: not one text repeated


class Recorder:
    """A generator that records its calls; `seeds_prompts` as given."""

    name = "recorder"

    def __init__(self, seeds_prompts: bool) -> None:
        self.settings = GenerationSettings(max_new_tokens=4)
        self.capabilities = Capabilities(seeds_prompts=seeds_prompts)
        self.calls: list[tuple[int, dict[str, Any]]] = []

    def describe(self) -> dict[str, Any]:
        return {}

    def generate(self, prompts: list[Any], n: int = 1, **seeding: Any) -> Generated:
        self.calls.append((len(prompts), seeding))
        return Generated.unexplained([[f"s{i}"] * n for i in range(len(prompts))])


@pytest.mark.parametrize("seeds_prompts", [True, False])
def test_seeded_requests_batch_only_on_a_generator_that_seeds_each_prompt(seeds_prompts):
    gen = Recorder(seeds_prompts)
    bodies = [
        {"messages": m, "max_tokens": 4, "temperature": 0.7, "seed": 40 + i}
        for i, m in enumerate(PROMPTS[:4])
    ]
    with serving(gen, batch_wait_ms=WINDOW_MS) as (url, _):
        assert all(status == 200 for status, _ in together(url, bodies))
    if seeds_prompts:  # one call, each prompt with its request's seed (in arrival order)
        assert len(gen.calls) == 1 and sorted(gen.calls[0][1]["seeds"]) == [40, 41, 42, 43]
    else:  # no way to seed a prompt alone in a batch: each request alone
        assert [size for size, _ in gen.calls] == [1, 1, 1, 1] and "seeds" not in gen.calls[0][1]


def test_the_row_sampler_draws_from_the_distribution_and_each_row_from_its_own_stream():
    import torch

    from ehrmind.generate.hf import RowSampler, row_seed

    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    scores = probs.log().expand(4000, 4)
    drawn = RowSampler([], [row_seed(1, j) for j in range(4000)])(None, scores).argmax(dim=-1)
    share = torch.bincount(drawn, minlength=4) / 4000
    assert torch.allclose(share, probs, atol=0.03) and share[3] == 0  # never a token of probability 0
    # a row draws the same tokens step after step whatever rows share its batch
    seeds = [row_seed(7, 0), row_seed(8, 0), row_seed(7, 1)]
    uniform = torch.zeros(3, 50)
    together_, alone = RowSampler([], seeds), RowSampler([], seeds[:1])
    steps = [(together_(None, uniform).argmax(-1), alone(None, uniform[:1]).argmax(-1)) for _ in range(5)]
    assert all(both[0] == one[0] for both, one in steps)
    assert [int(b[1]) for b, _ in steps] != [int(b[0]) for b, _ in steps]  # another seed, other draws
    assert row_seed(5, 0) != row_seed(5 + 2**32, 0)  # a CPU generator keeps 32 bits: the seed is hashed


def test_seeded_sampling_applies_the_warpers_transformers_sampling_would(generator, monkeypatch):
    """The seeded path samples greedily over scores it made one-hot, so it applies temperature, top-k and
    top-p itself: the same warpers, in the same order, as transformers' own `do_sample` path."""
    import copy

    model = generator.model

    def transformers_warpers() -> list[str]:
        config = copy.deepcopy(model.generation_config)
        config.update(do_sample=True, temperature=0.6, top_p=0.9)
        config.update(**config._get_default_generation_params(), defaults_only=True)
        sampling = model._get_logits_processor(generation_config=config, device="cpu")
        config.do_sample = False
        greedy = model._get_logits_processor(generation_config=config, device="cpu")
        return [f"{type(p).__name__} {vars(p)}" for p in sampling[len(greedy) :]]

    knobs = {"temperature": 0.6, "top_p": 0.9}  # what generate passes
    ours = [f"{type(p).__name__} {vars(p)}" for p in generator._sampling_warpers(knobs)]
    assert ours == transformers_warpers() and len(ours) == 3  # temperature, top-k 50 (the default), top-p
    config = copy.deepcopy(model.generation_config)
    config.update(top_k=0, min_p=0.05)  # what a generation config may set
    monkeypatch.setattr(model, "generation_config", config)
    ours = [f"{type(p).__name__} {vars(p)}" for p in generator._sampling_warpers(knobs)]
    assert ours == transformers_warpers() and "MinPLogitsWarper" in ours[-1]


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

    name, capabilities = "broken", Capabilities()

    def __init__(self) -> None:
        self.settings = GenerationSettings(max_new_tokens=4)
        self.calls: list[int] = []

    def describe(self) -> dict[str, Any]:
        return {}

    def generate(self, prompts: list[Any], n: int = 1) -> Generated:
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


class Blocking:
    """A generator whose calls wait for `release`; records the prompts of each call."""

    name, capabilities = "blocking", Capabilities()

    def __init__(self) -> None:
        self.settings = GenerationSettings(max_new_tokens=4)
        self.started, self.release = threading.Event(), threading.Event()
        self.calls: list[int] = []

    def describe(self) -> dict[str, Any]:
        return {}

    def generate(self, prompts: list[Any], n: int = 1, **seeding: Any) -> Generated:
        self.calls.append(len(prompts))
        self.started.set()
        self.release.wait(30)
        return Generated.uniform([["done"] * n for _ in prompts], "stop")


def _send_and_reset(port: int, body: dict[str, Any]) -> socket.socket:
    """A client that sends a request; closing the returned socket resets the connection (as a client
    that timed out)."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def test_clients_that_go_away_cost_no_generation_and_no_traceback(capfd, caplog):
    """Issue #26, item 5: a client that timed out and retried left its request queued (generated twice)
    and a traceback per reply written to a closed connection (6 in one evaluation). Now a request whose
    client has gone is skipped, and a reply with nobody to read it is one INFO line."""
    gen = Blocking()
    body = {"messages": PROMPTS[0], "max_tokens": 4, "temperature": 0}
    with caplog.at_level(logging.INFO, logger="ehrmind.generate.server"):
        with serving(gen, max_batch=1) as (url, server):
            port = server.server_address[1]
            generating = _send_and_reset(port, body)
            assert gen.started.wait(30)
            queued = _send_and_reset(port, body)  # waits behind the first (max_batch 1)
            time.sleep(0.3)
            generating.close()
            queued.close()
            time.sleep(0.3)
            gen.release.set()
            assert text(post(url, body)) == "done"  # still serving
    assert gen.calls == [1, 1]  # the first request and the last; the queued one was skipped
    messages = [r.getMessage() for r in caplog.records]
    assert any("went away before its reply" in m for m in messages), messages
    assert any("went away before its request was generated" in m for m in messages), messages
    assert "Traceback" not in capfd.readouterr().err
