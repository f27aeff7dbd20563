"""`ehrmind serve`: a minimal OpenAI-compatible server over a generator (`HFGenerator` by default, built by
the backend factory as `ehrmind eval` builds it), for local teachers and tests.

Endpoints: `POST /v1/chat/completions` (messages, temperature, top_p, max_tokens / max_completion_tokens,
n, seed, and logprobs / top_logprobs for one token; no streaming), `GET /v1/models`, `GET /health`. Prompts
are rendered with the model's own chat template; a final assistant message is continued (prefill).
Binds to 127.0.0.1 by default; there is no authentication, so only bind elsewhere on a trusted network.
Request bodies and completions are never logged.

Dynamic micro-batching: a `ThreadingHTTPServer` thread per connection parses and checks a request, then
hands it to one worker thread that owns the generator and waits for the answer. The worker takes the
requests queued while it was busy and those that keep arriving, until none has come for `batch_wait_ms`
or `max_batch` are in (so a lone request waits `batch_wait_ms`, a burst at most `max_batch` times that),
and generates each group of compatible ones in one `generate` call (prompts left-padded together), so
concurrent clients gain even on CPU. Compatible means the same `max_tokens` and:

- greedy (temperature 0): any seed; left padding gives the same text as a request generated alone;
- sampled with a `seed`: the same temperature, top_p and n, each request's rows drawing from their own
  random streams seeded from its seed (`HFGenerator.generate(seeds=…)`), so a request gives the same
  completions alone or with any others (up to float effects of left padding: equal in every case measured,
  see docs/generation.md); a generator without `seeds_prompts` generates each seeded request alone;
- sampled without a `seed`: the same temperature, top_p and n, one random stream for the batch (no
  reproducibility is promised);
- log-probability requests: alone.

If a batch fails, each of its requests is generated again alone, so every client gets its own answer (a
prompt that does not fit the context is one client's 400, not the batch's); no client waits forever: on
shutdown the worker answers what it holds and refuses the rest with 503. A client that went away (timed
out, interrupted) before its request was generated is skipped, and one that goes away before its reply is
written costs one INFO line, never a traceback.

One client cannot tie it up: bodies over `MAX_BODY_BYTES`, JSON deeper than `MAX_JSON_DEPTH` and prompts
that cannot fit the model's context are refused before parsing or tokenizing; a stalled client is dropped
after `READ_TIMEOUT_S`; at most `MAX_CONNECTIONS` connections are served at once (more get 503); every
client mistake is a 4xx naming the parameter, never a 500.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import select
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError
from ehrmind.generate.settings import GenerationSettings
from ehrmind.trained import SERVED_KEY

if TYPE_CHECKING:
    from ehrmind.generate.backends import Backend

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_N = 64
MAX_JSON_DEPTH = 64
"""Deeper request JSON is refused before parsing (json recurses per level)."""
CHARS_PER_TOKEN_LIMIT = 8
"""A prompt longer than this many characters per token of the model's context cannot fit (tokens are at
least one character, usually 3-4): refused before tokenizing, which for 10 MB took 39 s and 1.2 GB."""
MAX_SEED = 2**32 - 1
MAX_CONNECTIONS = 32
"""Connections served at once (their requests wait for the worker); more are answered 503. Room for
`ehrmind eval --concurrency 8` with pooled keep-alive connections several times over; each waiting
connection holds at most one body of `MAX_BODY_BYTES`."""
READ_TIMEOUT_S = 30.0
"""A client that stops sending mid-request is dropped after this long."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BATCH = 16
"""Default for `max_batch`: the most sequences (requests × n) generated in one call; 16 takes the requests of
`ehrmind eval --url --concurrency 8 --samples 2` in one call."""
BATCH_WAIT_MS = 5.0
"""Default for `batch_wait_ms`: a batch closes when no request has arrived for this long."""


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400 (OpenAI error type `invalid_request_error`)."""


class ServerClosing(RuntimeError):
    """The server is shutting down: answered 503, so a client retries elsewhere or later."""


class ClientGone(ConnectionError):
    """The client closed its connection before its request was generated: nothing to answer."""


DISCONNECTS = (ConnectionError, TimeoutError)
"""What a client that goes away raises in the thread serving it (broken pipe, reset, aborted, timed out)."""


@dataclass
class _Job:
    """One request handed to the worker; `future` gets its result or its exception."""

    messages: list[dict[str, str]]
    n: int
    settings: GenerationSettings
    seeded: bool
    """The request gave a `seed` (`settings.seed`): sampled reproducibly from it."""
    seeds_prompts: bool = False
    """The generator takes a seed per prompt (`seeds_prompts`): seeded jobs can share a call."""
    top_logprobs: int | None = None
    """Set for a log-probability request (one token, alone)."""
    gone: Callable[[], bool] | None = None
    """Whether the client has closed its connection (checked before generating)."""
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)

    def key(self) -> tuple[Any, ...] | None:
        """Jobs with equal keys can share one `generate` call; None: this one is generated alone."""
        s = self.settings
        if self.top_logprobs is not None:
            return None
        if s.temperature == 0:
            return ("greedy", s.max_new_tokens)
        if self.seeded:
            return (
                ("seeded", s.max_new_tokens, s.temperature, s.top_p, self.n) if self.seeds_prompts else None
            )
        return ("sample", s.max_new_tokens, s.temperature, s.top_p, self.n)


def _groups(jobs: list[_Job], max_batch: int) -> list[list[_Job]]:
    """`jobs` split into groups of equal keys (in arrival order), each at most `max_batch` sequences
    (a single request with a larger n is a group of its own)."""
    groups: list[list[_Job]] = []
    open_: dict[tuple[Any, ...], list[_Job]] = {}
    for job in jobs:
        key = job.key()
        group = open_.get(key) if key is not None else None
        if group is None or sum(j.n for j in group) + job.n > max_batch:
            group = []
            groups.append(group)
            if key is not None:
                open_[key] = group
        group.append(job)
    return groups


class ChatBackend:
    """Turns OpenAI chat-completion request bodies into batched `generate` calls on one worker thread.

    `complete(body)` may be called from many threads at once; `close()` stops the worker. `generate_calls`,
    `batch_sizes` (a Counter: requests per `generate` call) and `requests_served` say what it did."""

    def __init__(
        self,
        generator: Any,
        model_name: str | None = None,
        *,
        max_batch: int = MAX_BATCH,
        batch_wait_ms: float = BATCH_WAIT_MS,
        trained: dict[str, Any] | None = None,
    ):
        """`trained`: the served folder's trained prompt (`TrainedPrompt.recipe()`), published in `/v1/models`
        so that `ehrmind eval --url` prompts it as it was trained."""
        if not _integer(max_batch) or max_batch < 1:
            raise ConfigError(f"max_batch must be an integer >= 1 (1: no batching), got {max_batch!r}")
        if not _number(batch_wait_ms) or not 0 <= batch_wait_ms <= 10_000:
            raise ConfigError(f"batch_wait_ms must be from 0 to 10000, got {batch_wait_ms!r}")
        self.generator = generator
        self.trained = trained
        self.model_name = model_name or str(generator.name)
        self.defaults: GenerationSettings = generator.settings or GenerationSettings()
        """Settings for what a request leaves out, read once: the worker swaps `generator.settings`."""
        self.seeds_prompts = generator.capabilities.seeds_prompts
        """The generator samples each prompt from its own seed (`HFGenerator`): seeded requests batch."""
        context = generator.describe().get("context_tokens")
        self.context_tokens: int | None = context if _integer(context) and context > 0 else None
        """The model's context in tokens (`describe()`'s `context_tokens`; None: unknown)."""
        self.max_batch = max_batch
        self.batch_wait = batch_wait_ms / 1000
        self.requests_served = 0
        self.generate_calls = 0
        self.batch_sizes: Counter[int] = Counter()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closing = False
        self._submit_lock = threading.Lock()
        self.worker = threading.Thread(target=self._run, name="ehrmind-serve-worker", daemon=True)
        self.worker.start()

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "ehrmind",
                    **({SERVED_KEY: self.trained} if self.trained else {}),
                }
            ],
        }

    def complete(self, body: Any, gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """The reply to one request body; `gone()` says whether its client has left (then it is skipped and
        `ClientGone` raised)."""
        messages, n, settings = self._parse(body)
        if body.get("logprobs"):
            return self._logprobs(body, messages, n, settings)
        job = _Job(
            messages,
            n,
            settings,
            seeded=body.get("seed") is not None,
            seeds_prompts=self.seeds_prompts,
            gone=gone,
        )
        texts, finish, usage = self._submit(job)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": t},
                "finish_reason": (finish[i] if i < len(finish) else None) or "stop",
            }
            for i, t in enumerate(texts)
        ]
        return self._reply(choices, usage=usage)

    def close(self, timeout: float | None = 60.0) -> None:
        """Stop taking requests; the worker answers what it holds, then stops (joined up to `timeout` s)."""
        with self._submit_lock:
            if not self._closing:
                self._closing = True
                self._queue.put(None)
        if self.worker is not threading.current_thread():
            self.worker.join(timeout)
            if self.worker.is_alive():
                log.warning(
                    "the generation worker is still busy after %s s; leaving it (a daemon thread)", timeout
                )

    # ------------------------------------------------------------------ the worker
    def _submit(self, job: _Job) -> Any:
        with self._submit_lock:
            if self._closing:
                raise ServerClosing("the server is shutting down")
            self._queue.put(job)
        try:
            return job.future.result()
        except ConfigError as e:  # e.g. the prompt does not fit the model's context
            raise BadRequest(str(e)) from None

    def _run(self) -> None:
        """The worker: collect a batch, generate it group by group, until `close()`."""
        stop = False
        try:
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                jobs = [first]
                if self.max_batch > 1 and first.key() is not None:
                    # until no request has come for `batch_wait` (queued ones are taken at once): 8 clients
                    # sending together arrive over ~7 ms on 2 cores, 2.4 ms apart at most
                    while len(jobs) < self.max_batch:
                        wait = jobs[-1].arrived + self.batch_wait - time.monotonic()
                        try:
                            job = self._queue.get(timeout=max(0.0, wait))
                        except queue.Empty:
                            break
                        if job is None:
                            stop = True
                            break
                        jobs.append(job)
                jobs = self._present(jobs)
                try:
                    for group in _groups(jobs, self.max_batch):
                        self._answer(group)
                except BaseException as e:  # a bug here must not leave a client waiting
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(
                                RuntimeError(f"generation worker failed: {type(e).__name__}")
                            )
                    raise
        finally:
            with self._submit_lock:
                self._closing = True
            while True:  # nothing is queued after the stop marker, but be safe
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.future.set_exception(ServerClosing("the server is shutting down"))

    @staticmethod
    def _present(jobs: list[_Job]) -> list[_Job]:
        """`jobs` whose clients are still connected; the others get `ClientGone` (a client that timed out
        and retried would otherwise have its request generated twice)."""
        kept = []
        for job in jobs:
            try:
                gone = job.gone is not None and job.gone()
            except Exception:  # a check that fails must not cost the client its answer
                gone = False
            if gone:
                job.future.set_exception(ClientGone("the client closed its connection"))
            else:
                kept.append(job)
        return kept

    def _answer(self, group: list[_Job]) -> None:
        """Generate `group` in one call and answer each job; if that fails, generate each job alone."""
        try:
            results = self._call(group)
        except Exception as e:
            if len(group) > 1:
                log.info(
                    "a batch of %d failed (%s); generating its requests one by one",
                    len(group),
                    type(e).__name__,
                )
                for job in group:
                    self._answer([job])
                return
            group[0].future.set_exception(e)
            return
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)

    def _call(self, group: list[_Job]) -> list[Any]:
        """One generator call for `group` (the worker thread only): per job (texts, finish reasons, usage),
        or for a log-probability job its top list."""
        gen, first = self.generator, group[0]
        old = gen.settings
        gen.settings = first.settings
        try:
            if first.top_logprobs is not None:
                results: list[Any] = [gen.next_token_logprobs(first.messages, first.top_logprobs)]
            else:
                prompts = [job.messages for job in group]
                seeding: dict[str, Any] = {}
                if first.seeded and first.seeds_prompts:  # each prompt samples from its own seed
                    seeding = {"seeds": [job.settings.seed for job in group]}
                elif first.seeded and gen.capabilities.seeds_calls:
                    # a seeded job alone: its sampling starts from its own seed, whatever ran before it
                    seeding = {"call_seed": 0}
                got = gen.generate(prompts, n=first.n, **seeding)
                results = [
                    (t, f, self._usage(job.messages, t))
                    for job, t, f in zip(group, got.completions, got.finish_reasons, strict=True)
                ]
        finally:
            gen.settings = old
        self.generate_calls += 1
        self.batch_sizes[len(group)] += 1
        self.requests_served += len(group)
        return results

    def _reply(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """A chat.completion reply around `choices`."""
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            **extra,
        }

    def _parse(self, body: Any) -> tuple[list[dict[str, str]], int, GenerationSettings]:
        """A request body's (messages, n, settings), or BadRequest naming what is wrong."""
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        if body.get("stream"):
            raise BadRequest("streaming is not supported; send stream=false")
        clean = self._messages(body.get("messages"))
        n = body.get("n", 1)
        if not _integer(n) or not 1 <= n <= MAX_N:
            raise BadRequest(f"'n' must be an integer from 1 to {MAX_N}")
        settings = self._settings(body)
        if n > 1 and settings.temperature == 0:
            raise BadRequest("n > 1 with temperature 0 gives identical completions; set temperature > 0")
        return clean, n, settings

    def _messages(self, messages: Any) -> list[dict[str, str]]:
        """The request's messages as `{"role", "content"}` text, if they can fit the model's context."""
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list")
        clean = [_message(i, m) for i, m in enumerate(messages)]
        limit = self.max_prompt_chars()
        if limit is not None and sum(len(m["content"]) for m in clean) > limit:
            raise BadRequest(
                f"the messages are longer than {limit:,} characters: they cannot fit the model's context"
            )
        return clean

    def _settings(self, body: dict[str, Any]) -> GenerationSettings:
        """The request's sampling parameters over the server's defaults (absent or null: OpenAI's)."""
        base = self.defaults

        def get(key: str, default: Any) -> Any:  # absent or null: OpenAI's default
            return default if body.get(key) is None else body[key]

        max_tokens = get("max_completion_tokens", get("max_tokens", base.max_new_tokens))
        temperature, top_p, seed = get("temperature", 1.0), get("top_p", 1.0), get("seed", base.seed)
        _check_sampling(max_tokens, temperature, top_p, seed)
        try:
            return replace(
                base,
                samples=1,  # n is the request's own; the settings describe one completion
                max_new_tokens=max_tokens,
                temperature=float(temperature),
                top_p=float(top_p),
                seed=seed,
            )
        except (TypeError, ValueError) as e:  # ConfigError is a ValueError
            raise BadRequest(f"bad sampling parameter: {e}") from None

    def _logprobs(
        self, body: dict[str, Any], messages: list[dict[str, str]], n: int, settings: GenerationSettings
    ) -> dict[str, Any]:
        """`logprobs: true`: one token, the likeliest, with its `top_logprobs` (the model's own distribution,
        before temperature) — what `OpenAICompatGenerator.choice_logprobs` asks for. Longer completions with
        log-probabilities are not served."""
        k = body.get("top_logprobs") or 1
        if not _integer(k) or not 1 <= k <= 20:
            raise BadRequest("'top_logprobs' must be an integer from 1 to 20")
        if settings.max_new_tokens != 1 or n != 1:
            raise BadRequest(
                "ehrmind serve returns log-probabilities for one token only: send max_tokens=1, n=1"
            )
        if not self.generator.capabilities.next_token_logprobs:
            raise BadRequest("this backend gives no log-probabilities")
        top = self._submit(_Job(messages, 1, settings, seeded=False, top_logprobs=k))
        listed = [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in top]
        return self._reply(
            [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": top[0][0]},
                    "logprobs": {"content": [{**listed[0], "top_logprobs": listed}]},
                    "finish_reason": "length",
                }
            ]
        )

    def max_prompt_chars(self) -> int | None:
        """The longest prompt worth tokenizing: `CHARS_PER_TOKEN_LIMIT` per token of the model's context."""
        return self.context_tokens * CHARS_PER_TOKEN_LIMIT if self.context_tokens else None

    def _usage(self, messages: list[dict[str, str]], texts: list[str]) -> dict[str, int]:
        """The reply's `usage` block, from a generator that counts tokens (`token_usage`); else none."""
        if not self.generator.capabilities.token_usage:
            return {}
        return self.generator.token_usage(messages, texts)


def _message(i: int, m: Any) -> dict[str, str]:
    """Message `i` of a request as `{"role", "content"}`, its content parts joined (the text ones)."""
    if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
        raise BadRequest(f"messages[{i}] needs a role of system, user or assistant")
    content = m.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise BadRequest(f"messages[{i}].content: a text part needs a string 'text'")
        content = "".join(texts)
    if not isinstance(content, str):
        raise BadRequest(f"messages[{i}].content must be a string")
    return {"role": m["role"], "content": content}


def _check_sampling(max_tokens: Any, temperature: Any, top_p: Any, seed: Any) -> None:
    """BadRequest for the first sampling parameter out of range."""
    if not _integer(max_tokens) or max_tokens < 1:
        raise BadRequest("bad sampling parameter: 'max_tokens' must be a positive integer")
    if not _number(temperature) or not 0 <= temperature <= 2:
        raise BadRequest("bad sampling parameter: 'temperature' must be a number from 0 to 2")
    if not _number(top_p) or not 0 < top_p <= 1:
        raise BadRequest("bad sampling parameter: 'top_p' must be a number in (0, 1]")
    if not _integer(seed) or not 0 <= seed <= MAX_SEED:
        raise BadRequest(f"bad sampling parameter: 'seed' must be an integer from 0 to {MAX_SEED}")


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests deeper than `limit` (brackets outside strings), in one linear pass."""
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _drain(sock: Any, limit: int = 1 << 20, seconds: float = 0.5) -> None:
    """Read and drop up to `limit` bytes the client has sent, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    got, wait = 0, seconds
    try:
        while got < limit and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(min(wait, left))
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
            if b"\r\n\r\n" in chunk:  # the headers are in: only wait briefly for the rest
                wait = 0.05
    except OSError:
        pass


def _closed(sock: Any) -> bool:
    """Whether the client has closed `sock` (readable with nothing to read, or reset); never blocks. A
    client that half-closes while awaiting its reply counts as gone (HTTP clients do not)."""
    try:
        if not select.select([sock], [], [], 0)[0]:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):  # reset, or already closed here
        return True


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `MAX_CONNECTIONS` at once: one more is answered 503 and closed
    instead of queueing without bound (20 clients sending 10 MB each held 2.9 GB)."""

    daemon_threads = True
    request_queue_size = 64
    """The listen backlog (socketserver's default is 5: an eighth simultaneous connect waited a 1 s SYN
    retry, missing its batch)."""

    def __init__(self, *args: Any, backend: ChatBackend | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.backend = backend

    def server_close(self) -> None:
        """Close the socket and stop the backend's worker (after it answers the requests it holds)."""
        super().server_close()
        if self.backend is not None:
            self.backend.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            _drain(request)  # read what the client sent, so closing does not reset it before it reads the 503
            body = json.dumps(
                {"error": {"message": "server busy; retry later", "type": "server_busy", "code": 503}}
            ).encode()
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request is one INFO line, not a traceback on stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            log.info("client %s disconnected (%s)", client_address[0], type(error).__name__)
            return
        super().handle_error(request, client_address)


def _handler(backend: ChatBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ehrmind-serve"
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_S  # socket timeout: a stalled client does not hold its thread forever

        def log_message(self, format: str, *args: Any) -> None:  # request line only, at debug level
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, obj: Any) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except DISCONNECTS as e:  # it timed out or was interrupted: nobody to answer
                self.close_connection = True
                log.info(
                    "client %s went away before its reply (%s); reply dropped",
                    self.client_address[0],
                    type(e).__name__,
                )

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0].rstrip("/")
            if path in ("/v1/models", "/models"):
                self._send(200, backend.models())
            elif path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._error(404, f"no route {path!r}; try /v1/chat/completions or /v1/models", "not_found")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            if path not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {path!r}; try /v1/chat/completions", "not_found")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY_BYTES:
                self.close_connection = True
                self._error(
                    413 if length > MAX_BODY_BYTES else 400, "missing, bad or too large Content-Length"
                )
                return
            try:
                data = self.rfile.read(length)
            except TimeoutError:
                self.close_connection = True
                return
            if len(data) < length:
                self.close_connection = True
                self._error(400, "the request body is shorter than its Content-Length")
                return
            if _too_deep(data):
                self._error(400, f"the request JSON nests deeper than {MAX_JSON_DEPTH} levels")
                return
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):
                self._error(400, "the request body is not JSON")
                return
            try:
                self._send(200, backend.complete(body, gone=lambda: _closed(self.connection)))
            except ClientGone:
                self.close_connection = True
                log.info(
                    "client %s went away before its request was generated; skipped", self.client_address[0]
                )
            except BadRequest as e:
                self._error(400, str(e))
            except ServerClosing as e:
                self.close_connection = True
                self._error(503, str(e), "server_busy")
            except Exception as e:  # report, keep serving; the message never holds the prompt
                log.exception("generation failed")
                self._error(500, f"generation failed: {type(e).__name__}", "server_error")

    return Handler


def make_server(
    generator: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str | None = None,
    *,
    max_batch: int = MAX_BATCH,
    batch_wait_ms: float = BATCH_WAIT_MS,
    trained: dict[str, Any] | None = None,
) -> _BoundedServer:
    """A ready `ThreadingHTTPServer` (port 0 picks a free port: read `server.server_address`); call
    `serve_forever()` (in a thread for tests) and `shutdown()` + `server_close()` to stop (the latter also
    stops the generation worker). `max_batch` 1 generates one request at a time; `server.backend` is the
    `ChatBackend`."""
    if host not in LOOPBACK:
        log.warning(
            "serving on %s: anyone who can reach this address can use the model (no authentication)", host
        )
    backend = ChatBackend(
        generator, model_name, max_batch=max_batch, batch_wait_ms=batch_wait_ms, trained=trained
    )
    try:
        return _BoundedServer((host, port), _handler(backend), backend=backend)
    except BaseException:  # e.g. the port is in use: no worker left behind
        backend.close()
        raise


def model_server(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: GenerationSettings | None = None,
    *,
    backend: Backend | None = None,
    model_name: str | None = None,
    max_batch: int = MAX_BATCH,
    batch_wait_ms: float = BATCH_WAIT_MS,
) -> _BoundedServer:
    """`make_server` over `model`, its generator built as `ehrmind eval` builds one (`make_generator` with
    `backend`: transformers on the CPU by default). A folder ehrmind trained is rendered with its training's
    chat-template variables unless `backend` gives others (`Backend.for_model`), and its trained prompt is
    published in `/v1/models` (`ehrmind.trained`)."""
    from ehrmind.generate.backends import Backend, make_generator
    from ehrmind.trained import TrainedPrompt

    backend = (backend or Backend()).for_model(model)
    trained = TrainedPrompt.of(model)
    generator = make_generator(model, settings or GenerationSettings(), backend)
    if trained is not None:
        log.info(
            "%s was trained on %s with %s: published in /v1/models for ehrmind eval --url",
            model,
            trained.task,
            ", ".join(f"{k}={v!r}"[:60] for k, v in trained.options.items()) or "the task's defaults",
        )
    return make_server(
        generator,
        host,
        port,
        model_name=model_name or model,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        trained=trained.recipe() if trained else None,
    )


def serve(model: str, *args: Any, on_ready: Any = None, **options: Any) -> None:
    """Serve `model` (`model_server`, which takes the other arguments) until interrupted; `on_ready(url)` once
    it listens."""
    server = model_server(model, *args, **options)
    h, p = server.server_address[:2]
    url = f"http://{h if ':' not in str(h) else f'[{h}]'}:{p}/v1"
    if on_ready is not None:
        on_ready(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
