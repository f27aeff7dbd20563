"""Generation through any OpenAI-compatible chat endpoint (`POST {base_url}/chat/completions`).

Same interface as `HFGenerator`: `generate(prompts, n) -> Generated` (completions and finish reasons). HTTP
through one pooled `httpx` client (connections are reused across requests and threads; `concurrency`
requests in flight at once).
Nothing leaves the machine unless the caller gives the URL.

- All `n` samples of a prompt are asked for in one request (`n`); a server that returns fewer choices
  (some providers ignore `n`) is asked again for the rest.
- `seeds` (one per prompt) are sent as the request's `seed`, so an endpoint that honours it (vLLM, OpenAI
  best-effort, `ehrmind serve`) samples reproducibly and a resumed run asks for what the first one did.
- Timeouts fit a CPU server that queues requests: connecting may take `CONNECT_TIMEOUT_S`, a whole reply
  `max(timeout, READ_SECONDS_PER_TOKEN * max_tokens)` (a read timeout shorter than the completion takes
  only turns a slow reply into a retry the server then generates twice).
- Every request ends: each socket read and write waits at most until the attempt's end (the reply's time
  above, or the request's `deadline` if sooner), so a server that stalls, or trickles a byte a second into
  its headers or body, is cut there as a timeout; a request's attempts and waits together end within
  `deadline` (`REQUEST_DEADLINE_S`), after which it fails with `EndpointError` naming the endpoint.
- A reply is read up to `max_reply_bytes` (`MAX_REPLY_BYTES`) once decompressed; only one gzip or deflate
  encoding is accepted (a gzip bomb stops at the limit; stacked or other encodings are refused unread).
- Failures that may pass are retried with exponential backoff (`backoff * 2**k`, capped at `max_backoff`):
  refused, reset or closed connections, timeouts, replies that are not JSON, HTTP 408/409/429 and 5xx; a
  `Retry-After` header (seconds or an HTTP date) is honoured instead, unless it asks for longer than
  `MAX_RETRY_AFTER` or than the request's deadline leaves: the request then fails at once naming the
  header (a server that says "come back in an hour" is not waited for, nor hammered at the backoff). A
  failure that would only repeat (a URL scheme or proxy httpx cannot use, a TLS handshake that fails: a
  certificate that does not verify, https to a plain-HTTP port) fails at once. The retry loop is ours rather
  than httpx's or the `openai` client's, because every message it writes must have prompt text removed
  (servers sometimes echo the input).
- A JSON reply is checked against the chat-completion schema (`ChatReply`); one that does not fit (no
  `choices`, a choice without `message`, `content` a number, more choices than asked for, JSON nested
  thousands deep …) fails at once with `EndpointError` naming the field, as a server answers alike each
  time. `content` may be a string or a list of content parts (their `text` parts joined); lone UTF-16
  surrogates (`"\\ud800"`) become U+FFFD, so the text can be written.
- Any other 4xx fails at once with `EndpointError` naming the status and an excerpt of the server's error
  message, with text from the prompt removed.
- The API key is sent as a bearer token and never logged, shown in `repr` or put in an error message.
  httpx's own INFO line per request is silenced (its loggers set to WARNING unless already configured).
- A final assistant message (prefill) is continued: the request carries vLLM's
  `continue_final_message: true, add_generation_prompt: false` (`ehrmind serve` continues it always). The
  Task prepends the part of the output contract it supplied when verifying (`Contract.prefix`).
  OpenAI's own API does not continue an assistant message; `prefill_fields=False` leaves the flags out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import functools
import json
import logging
import math
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ehrmind.errors import ConfigError, UserError
from ehrmind.generate.base import Capabilities, Generated
from ehrmind.generate.settings import GenerationSettings

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Statuses worth retrying: rate limits, timeouts and server-side failures (408/409 as OpenAI's own client)."""
MAX_RETRY_AFTER = 600.0
"""The longest `Retry-After` (seconds) waited for: a server asking for longer (an hourly quota, 10^9 s, a date
next year) fails the request at once with the header in the message, so a misconfigured server cannot hang a
run and a real quota is not retried into."""
EXCERPT_CHARS = 300
CONNECT_TIMEOUT_S = 10.0
"""Seconds to open a connection (at most `timeout`): a server that accepts none in this long is down or
unreachable, and the attempt is retried."""
READ_SECONDS_PER_TOKEN = 1.0
"""A reply may take this long per requested token (`max_tokens`) before the read times out, if longer than
`timeout`: a CPU server queues requests behind the batch it is generating, and larger models are slower;
a retry after a timeout only makes the server generate the request twice."""
REQUEST_DEADLINE_S = 1800.0
"""Seconds one request may take in all: its attempts, backoff and `Retry-After` waits (the default of the
generator's `deadline`). Room for a 1,024-token reply from a slow CPU server (`READ_SECONDS_PER_TOKEN`) and a
retry; a server that stalls or trickles bytes fails the run after this long instead of holding it forever."""
MAX_REPLY_BYTES = 16 * 2**20
"""The largest reply read, in bytes once decompressed (the default of `max_reply_bytes`): a chat completion
is kilobytes; a gzip bomb (a tiny body that inflates to gigabytes) stops here."""
ENCODINGS = ("", "identity", "gzip", "deflate")
"""Content-Encodings read (one at most; what the client asks for): httpx decodes each 64 KiB read in one
piece, which gzip and deflate bound to ~1,000 times its size, zstd or stacked encodings to far more."""


class EndpointError(UserError, RuntimeError):
    """The endpoint refused the request or kept failing; `status` is the last HTTP status (None: no reply)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    def __init__(
        self, what: str, status: int | None = None, retry_after: float | None = None, header: str = ""
    ):
        super().__init__(what)
        self.what, self.status, self.retry_after, self.header = what, status, retry_after, header


class _BadReply(Exception):
    """A reply that is not what was asked for (the message names the field); a server answers alike again."""


def endpoint_url(base_url: str, path: str) -> str:
    """`base_url` with `path` appended to its path, its query string kept after it: a key passed as
    `?key=…` stays a query parameter instead of ending up inside the request path."""
    p = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, p.path.rstrip("/") + path, p.query, ""))


def public_url(url: str) -> str:
    """The URL without user:password@ and query string, for messages."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))


class OpenAICompatGenerator:
    """Chat completions from an OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, `ehrmind serve`, …)."""

    capabilities = Capabilities(samples_per_request=True, seeds_prompts=True, choice_logprobs=True)
    """`generate` asks for all `n` samples of a prompt at once and takes `seeds`, one per prompt (the
    evaluation runner then batches by example, not by (example, sample)); `choice_logprobs` asks the endpoint
    only when made with `logprobs=True` (an instance made without it declares no `choice_logprobs`)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        settings: GenerationSettings | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 1,
        extra_body: dict[str, Any] | None = None,
        logprobs: bool = False,
        top_logprobs: int = 20,
        prefill_fields: bool = True,
        deadline: float | None = None,
        max_reply_bytes: int | None = None,
    ):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"the endpoint URL must be http(s), such as http://127.0.0.1:8000/v1, got {base_url!r}"
            )
        deadline = REQUEST_DEADLINE_S if deadline is None else deadline
        max_reply_bytes = MAX_REPLY_BYTES if max_reply_bytes is None else max_reply_bytes
        if not (
            max_retries >= 0
            and 0 <= backoff < math.inf
            and 0 <= max_backoff < math.inf
            and 0 < timeout < math.inf
            and 0 < deadline < math.inf
            and max_reply_bytes > 0
            and concurrency >= 1
        ):
            raise ConfigError(
                "need max_retries >= 0, finite backoff and max_backoff >= 0, finite timeout and deadline > 0, "
                "max_reply_bytes > 0 and concurrency >= 1"
            )
        self.base_url = base_url.rstrip("/")
        self.url = endpoint_url(self.base_url, "/chat/completions")
        self.model = model
        self.name = model
        self.settings = settings or GenerationSettings()
        self.timeout = timeout
        """Seconds to wait for a reply, at least: `read_timeout` gives long completions longer."""
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.deadline = float(deadline)
        """Seconds one request may take in all, retries and waits included (`REQUEST_DEADLINE_S`)."""
        self.max_reply_bytes = max_reply_bytes
        """The largest reply read, decompressed (`MAX_REPLY_BYTES`)."""
        self.concurrency = concurrency
        self.extra_body = dict(extra_body or {})
        if not 1 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs must be from 1 to 20 (OpenAI's limit), got {top_logprobs}")
        self.logprobs, self.top_logprobs = logprobs, top_logprobs
        self.prefill_fields = prefill_fields
        self._api_key = api_key
        self._sleep = time.sleep  # replaced in tests
        self.requests_sent = 0
        """HTTP requests made so far, retries included."""
        self._count_lock = threading.Lock()
        self._http: Any = None
        if not logprobs:  # nothing to ask: the runner need not call `choice_logprobs`
            self.capabilities = dataclasses.replace(type(self).capabilities, choice_logprobs=False)

    def describe(self) -> dict[str, Any]:
        """What the run record keeps about this backend (never the key)."""
        return {"backend": "openai", "url": public_url(self.base_url), "concurrency": self.concurrency}

    def close(self) -> None:
        """Close the pooled connections (also done when the generator is garbage-collected)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit modules may be gone
            self.close()

    def __enter__(self) -> OpenAICompatGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_timeout(self, max_tokens: int | None) -> float:
        """Seconds a reply to a request for `max_tokens` tokens may take: `timeout`, or more for long
        completions (`READ_SECONDS_PER_TOKEN` each)."""
        return max(self.timeout, READ_SECONDS_PER_TOKEN * (max_tokens or 0))

    def _timeout(self, max_tokens: int | None) -> Any:
        import httpx

        read = self.read_timeout(max_tokens)
        return httpx.Timeout(read, connect=min(self.timeout, CONNECT_TIMEOUT_S), pool=read)

    def _client(self) -> Any:
        with self._count_lock:
            if self._http is None:
                for name in ("httpx", "httpcore"):  # one INFO line per request is noise; theirs if set
                    logger = logging.getLogger(name)
                    if logger.level == logging.NOTSET:
                        logger.setLevel(logging.WARNING)
                self._http = http_client(self._timeout(None), self.concurrency)
            return self._http

    def __repr__(self) -> str:  # never the key
        key = "set" if self._api_key else "none"
        return f"OpenAICompatGenerator(url={public_url(self.url)!r}, model={self.model!r}, api_key={key})"

    # ------------------------------------------------------------------ interface
    def generate(
        self, prompts: list[list[dict[str, str]]], n: int = 1, *, seeds: Sequence[int] | None = None
    ) -> Generated:
        """`n` completions for each prompt, in order, with the server's `finish_reason`s ("length": cut at
        max_tokens; None where it gave none). Each prompt is one request for all `n` (`concurrency`
        at a time), with `seeds[i]` as its seed (default: the settings' seed); the first request that
        finally fails stops the call with EndpointError."""
        if n < 1:
            raise ConfigError(f"n must be >= 1, got {n}")
        if seeds is None:
            seeds = [self.settings.seed] * len(prompts)
        if len(seeds) != len(prompts):
            raise ConfigError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        jobs = list(zip(prompts, seeds, strict=True))
        if self.concurrency == 1 or len(prompts) < 2:
            done = [self._complete(messages, n, seed) for messages, seed in jobs]
        else:
            pool = ThreadPoolExecutor(max_workers=self.concurrency)
            try:
                done = list(pool.map(lambda job: self._complete(job[0], n, job[1]), jobs))
            finally:  # after a failure, requests not yet sent are not sent (those in flight end by deadline)
                pool.shutdown(wait=True, cancel_futures=True)
        return Generated(
            [[t for t, _ in choices] for choices in done], [[f for _, f in choices] for choices in done]
        )

    def _complete(self, messages: list[dict[str, str]], n: int, seed: int) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for attempt in range(n):  # at most n requests: each returns at least one choice
            # a repeat asks for the missing samples with another seed, or it would repeat the first ones
            got = self._request(messages, n - len(out), seed + attempt * 1_000_003)
            out.extend(got[: n - len(out)])
            if len(out) >= n:
                break
        return out

    def body(self, messages: list[dict[str, str]], n: int, seed: int | None = None) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
            "n": n,
            "seed": s.seed if seed is None else seed,
        }
        if self.prefill_fields and messages and messages[-1].get("role") == "assistant":
            body.update(continue_final_message=True, add_generation_prompt=False)  # vLLM's prefill flags
        return {**body, **self.extra_body}

    def choice_logprobs(
        self, prompt: list[dict[str, str]], prefix: str, choices: Sequence[str]
    ) -> list[float] | None:
        """log P(choice) at the point where a completion states its answer, from the endpoint's top
        log-probabilities (`logprobs=True`; None otherwise, so nothing extra is sent).

        One request continues the prompt with the completion up to the answer (`prefix`, plus what all the
        choices share, e.g. the opening quote of `"yes"` / `"no"`) and asks for one token with its
        `top_logprobs`; a choice's log-probability is that of the likeliest listed token it starts with (its
        first token: enough to rank, and what an endpoint can give). A choice with no listed token gets the
        lowest listed log-probability (an upper bound on its own); None when no choice is listed. Needs a
        server that continues a final assistant message: vLLM (`continue_final_message`, sent here) or
        `ehrmind serve`; OpenAI's own API does not continue one."""
        if not self.logprobs:
            return None
        from ehrmind.generate.chat import answer_point

        messages, shared = answer_point(prompt, prefix, list(choices))
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "n": 1,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
            "continue_final_message": True,
            "add_generation_prompt": False,
            **self.extra_body,
        }
        top = self._send(body, messages, _top_logprobs)
        return first_token_logprobs(top, [c[len(shared) :] for c in choices])

    # ------------------------------------------------------------------ HTTP
    def _request(self, messages: list[dict[str, str]], n: int, seed: int) -> list[tuple[str, str | None]]:
        return self._send(self.body(messages, n, seed), messages, functools.partial(chat_choices, n=n))

    def _send(self, body: dict[str, Any], messages: list[dict[str, str]], parse: Callable[[bytes], T]) -> T:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        where = public_url(self.url)
        deadline = time.monotonic() + self.deadline
        attempt = 0
        while True:
            try:
                return parse(self._post_once(data, headers, messages, body.get("max_tokens"), deadline))
            except _BadReply as e:
                raise EndpointError(f"{where}: {e}; not retried") from None
            except _Retryable as e:
                if attempt >= self.max_retries:
                    raise EndpointError(
                        f"{where}: {e.what}; gave up after {attempt + 1} attempt(s) "
                        f"(--max-retries {self.max_retries})",
                        status=e.status,
                    ) from None
                delay = self._delay(e, attempt, deadline - time.monotonic())
                attempt += 1
                log.warning(
                    "%s: %s; retry %d of %d in %.1f s", where, e.what, attempt, self.max_retries, delay
                )
                self._sleep(delay)

    def _delay(self, failure: _Retryable, attempt: int, left: float) -> float:
        """Seconds to wait before retrying `failure`: the server's `Retry-After` or the backoff; an
        EndpointError when that wait is longer than `MAX_RETRY_AFTER` or than the request has `left`."""
        where = public_url(self.url)
        delay = failure.retry_after
        if delay is not None and delay > min(MAX_RETRY_AFTER, left):
            limit = (
                f"the {MAX_RETRY_AFTER:.0f} s waited at most"
                if MAX_RETRY_AFTER <= left
                else f"the {_seconds(max(left, 0))} s left of the request's {_seconds(self.deadline)} s deadline"
            )
            raise EndpointError(
                f"{where}: {failure.what}; the server asks to retry after {delay:,.0f} s "
                f"(Retry-After: {failure.header[:60]!r}), longer than {limit}: try again later",
                status=failure.status,
            )
        if delay is None:
            delay = min(self.max_backoff, self.backoff * 2**attempt)
        if delay >= left:
            raise EndpointError(
                f"{where}: {failure.what}; gave up at the request's deadline of {_seconds(self.deadline)} s "
                f"after {attempt + 1} attempt(s)",
                status=failure.status,
            )
        return delay

    def _post_once(
        self,
        data: bytes,
        headers: dict[str, str],
        messages: list[dict[str, str]],
        max_tokens: int | None,
        deadline: float,
    ) -> bytes:
        import httpx

        client = self._client()
        with self._count_lock:
            self.requests_sent += 1
        where = public_url(self.url)
        started = time.monotonic()
        budget = min(self.read_timeout(max_tokens), deadline - started)
        try:
            with (
                time_limit(started + budget),
                client.stream(
                    "POST", self.url, content=data, headers=headers, timeout=self._timeout(max_tokens)
                ) as resp,
            ):
                status = resp.status_code
                raw = read_reply(resp, self.max_reply_bytes, where)
        except (httpx.TransportError, OSError) as e:
            if not retryable(e):
                raise EndpointError(f"{where}: no reply ({type(e).__name__}: {e}); not retried") from None
            what = "no reply"
            if isinstance(e, httpx.TimeoutException):
                what = f"no complete reply within {_seconds(budget)} s"
            raise _Retryable(f"{what} ({type(e).__name__}: {e})") from None
        except httpx.DecodingError as e:
            raise EndpointError(f"{where}: the reply cannot be decompressed ({e}); not retried") from None
        if 200 <= status < 300:
            return raw
        excerpt = error_excerpt(raw, messages)
        if status in RETRY_STATUS:
            header = str(resp.headers.get("Retry-After") or "")
            raise _Retryable(
                f"HTTP {status} {excerpt}".rstrip(), status, parse_retry_after(resp.headers), header
            )
        hint = " (the base URL usually ends in /v1)" if status == 404 else ""
        raise EndpointError(
            f"{where} refused the request: HTTP {status}{hint}: {excerpt or '(no body)'}", status=status
        )


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 1 else f"{value:.1f}"


# ---------------------------------------------------------------- reading replies: time, size, shape

_deadline = threading.local()


@contextlib.contextmanager
def time_limit(until: float) -> Iterator[None]:
    """Within it, every socket this thread connects, reads or writes through `http_client` waits at most
    until `until` (`time.monotonic()`): a per-read timeout alone lets a server that trickles a byte a second
    hold a request forever."""
    before = getattr(_deadline, "until", None)
    _deadline.until = until if before is None else min(before, until)
    try:
        yield
    finally:
        _deadline.until = before


def _left(timeout: float | None, timed_out: Callable[[str], BaseException]) -> float | None:
    """`timeout`, shortened to the time left to this thread's `time_limit`; `timed_out` raised when none is."""
    until = getattr(_deadline, "until", None)
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise timed_out("the request's time is up")
    return left if timeout is None else min(timeout, left)


class _TimedStream:
    """httpcore's network stream with each read, write and TLS handshake bounded by `time_limit`."""

    def __init__(self, inner: Any):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        import httpcore

        return _TimedStream(
            self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _TimedBackend:
    """httpcore's network backend, its connections `_TimedStream`s."""

    def __init__(self, inner: Any):
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        import httpcore

        stream = self._inner.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _TimedStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        import httpcore

        stream = self._inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _TimedStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def http_client(timeout: Any, connections: int) -> Any:
    """An `httpx.Client` whose sockets keep `time_limit`, asking for gzip or deflate only (`ENCODINGS`), and
    ignoring proxies from the environment (they must not see patient prompts unasked).

    httpx takes no network backend, so the one of its transport's connection pool is wrapped; without one
    (another httpx), time limits hold between the chunks `read_reply` reads, not inside a read."""
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    pool = getattr(transport, "_pool", None)
    if getattr(pool, "_network_backend", None) is not None:
        pool._network_backend = _TimedBackend(pool._network_backend)  # type: ignore[union-attr]
    else:
        log.debug("httpx %s: no network backend to bound; time limits hold between reads", httpx.__version__)
    return httpx.Client(
        timeout=timeout,
        transport=transport,
        trust_env=False,
        headers={"Accept-Encoding": "gzip, deflate"},
    )


def read_reply(resp: Any, limit: int, where: str) -> bytes:
    """The body of a streamed httpx response, decompressed, refused beyond `limit` bytes or in an encoding
    other than one of `ENCODINGS` (EndpointError); a timeout when the thread's `time_limit` passes."""
    import httpx

    encoding = str(resp.headers.get("Content-Encoding") or "").strip().lower()
    if encoding not in ENCODINGS:
        raise EndpointError(
            f"{where}: the reply is encoded as {encoding[:40]!r}, not read (gzip or deflate are); not retried",
            status=resp.status_code,
        )
    body = bytearray()
    for chunk in resp.iter_bytes():
        body += chunk
        if len(body) > limit:
            what = " once decompressed" if encoding not in ("", "identity") else ""
            raise EndpointError(
                f"{where}: the reply is larger than {limit:,} bytes{what}; not read further, not retried",
                status=resp.status_code,
            )
        _left(None, httpx.ReadTimeout)  # the time is up between chunks as well
    return bytes(body)


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with lone UTF-16 surrogates (JSON's `"\\ud800"` without its pair) as U+FFFD: UTF-8 cannot write
    them, so a completion holding one would fail when saved."""
    return _SURROGATE.sub("\ufffd", text)


def load_json(raw: bytes) -> Any:
    """A reply's JSON: `_Retryable` when it is not JSON (a proxy's HTML page may pass), `_BadReply` when it
    nests deeper than Python's JSON reader goes (a chat completion nests six levels)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise _BadReply(
            "the reply nests JSON too deep to read (a chat completion nests six levels)"
        ) from None
    except ValueError as e:
        raise _Retryable(f"the reply is not JSON ({type(e).__name__} at {getattr(e, 'pos', '?')})") from None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def message_text(value: Any) -> str:
    """A message's `content`: a string as is, null as "", a list of content parts as their `text` parts
    joined (OpenAI's multi-part form; parts of other types, such as a refusal or an image, are left out);
    anything else is refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise PydanticCustomError(
            "content", "should be a string or a list of text parts, got {got}", {"got": _json_type(value)}
        )
    texts = []
    for i, part in enumerate(value):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise PydanticCustomError(
                "content_part", "part {i} should be an object with a string type, got {got}",
                {"i": i, "got": _json_type(part)},
            )  # fmt: skip
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise PydanticCustomError(
                    "content_part", "part {i} is a text part whose text is {got}, not a string",
                    {"i": i, "got": _json_type(part.get("text"))},
                )  # fmt: skip
            texts.append(part["text"])
    return "".join(texts)


class _Schema(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ChatMessage(_Schema):
    content: str = ""
    """The text (`message_text`)."""

    @field_validator("content", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return message_text(value)


class ChatChoice(_Schema):
    index: Annotated[int, Field(ge=0)] | None = None
    message: ChatMessage
    finish_reason: Annotated[str, StringConstraints(max_length=64)] | None = None
    """"stop", "length" (cut at max_tokens), or another server's word ("eos_token", "content_filter" …)."""


class ChatReply(_Schema):
    """The fields of an OpenAI chat completion that are read (others are ignored)."""

    choices: list[ChatChoice]


class TopLogprob(_Schema):
    token: str
    logprob: float


class TokenLogprobs(TopLogprob):
    top_logprobs: list[TopLogprob] | None = None


class ChoiceLogprobs(_Schema):
    content: list[TokenLogprobs] | None = None


class LogprobChoice(_Schema):
    logprobs: ChoiceLogprobs | None = None


class LogprobReply(_Schema):
    choices: Annotated[list[LogprobChoice], Field(min_length=1)]


def _field(loc: Sequence[Any]) -> str:
    """`("choices", 0, "message")` as "the reply's choices[0].message"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return f"the reply's {out}" if out else "the reply"


def validated(schema: type[BaseModel], obj: Any) -> Any:
    """`obj` as `schema`, or `_BadReply` naming the first field that does not fit and what it holds."""
    try:
        return schema.model_validate(obj)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        kind = err["type"]
        if kind == "missing":
            what = "is missing"
        elif kind in ("content", "content_part"):
            what = err["msg"]
        elif kind in ("model_type", "dict_type"):
            what = f"should be an object, got {_json_type(err.get('input'))}"
        else:
            said = err["msg"].removeprefix("Input ")
            what = f"{said[:1].lower()}{said[1:]}, got {_json_type(err.get('input'))}"
        raise _BadReply(f"{_field(err['loc'])} {what}") from None


def chat_choices(raw: bytes, n: int) -> list[tuple[str, str | None]]:
    """(text, finish_reason) of each choice of a chat completion, in `index` order (at most `n`)."""
    reply = validated(ChatReply, load_json(raw))
    if not reply.choices:
        raise _Retryable("the reply has no choices")
    if len(reply.choices) > n:
        raise _BadReply(f"the reply has {len(reply.choices)} choices for n={n} asked")
    order = sorted(enumerate(reply.choices), key=lambda ic: ic[1].index if ic[1].index is not None else ic[0])
    return [
        (clean_text(c.message.content), clean_text(c.finish_reason) if c.finish_reason else None)
        for _, c in order
    ]


def retryable(error: BaseException) -> bool:
    """Whether a failure to get any reply may pass on its own: a refused, reset or closed connection, a
    timeout. Not: a scheme or proxy httpx cannot use, a request it cannot write, a TLS handshake that fails
    as such (a certificate that does not verify, https to a plain-HTTP port): each attempt would fail alike.
    A TLS connection cut short (`ssl.SSLEOFError` and the like) is retried."""
    import httpx

    if isinstance(error, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)):
        return False
    cause: BaseException | None = error
    for _ in range(8):  # the chain httpx -> httpcore -> ssl
        if cause is None:
            break
        if type(cause) in (ssl.SSLError, ssl.SSLCertVerificationError):
            return False
        cause = cause.__cause__ or cause.__context__
    return isinstance(error, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, OSError))


def _top_logprobs(raw: bytes) -> list[tuple[str, float]]:
    """(token, logprob) pairs listed for the first generated token of a chat completion."""
    reply = validated(LogprobReply, load_json(raw))
    content = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
    if not content:
        raise EndpointError(
            "the reply has no choices[0].logprobs.content[0].top_logprobs: the server does not return "
            "log-probabilities (drop --logprobs)"
        )
    first = content[0]
    return [(clean_text(t.token), t.logprob) for t in first.top_logprobs or [first]]


def first_token_logprobs(top: Sequence[tuple[str, float]], choices: Sequence[str]) -> list[float] | None:
    """Each choice's log-probability from one token's top list (see `choice_logprobs`)."""
    top = [(t, lp) for t, lp in top if math.isfinite(lp)]
    listed = [lp for _, lp in top]
    if not listed:
        return None
    got = [max((lp for t, lp in top if t and choice.startswith(t)), default=None) for choice in choices]
    if all(g is None for g in got):
        return None
    floor = min(listed)
    return [floor if g is None else g for g in got]


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), at least 0 and possibly
    huge (the retry loop refuses waits beyond `MAX_RETRY_AFTER`); None if absent or unreadable."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()[:100]
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        try:
            seconds = (when - datetime.now(UTC)).total_seconds()
        except OverflowError:
            return math.inf
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


_WORD = re.compile(r"\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters (terminal escapes among them), shown as spaces in an excerpt of a server's text."""
_SHINGLE = 4


def error_excerpt(body: bytes, messages: list[dict[str, str]]) -> str:
    """The server's error message (OpenAI `{"error": {"message": …}}` or the raw body), at most
    EXCERPT_CHARS, with any run of 4+ words that also occurs in the prompt replaced by `[…]`."""
    text = body[: 64 * EXCERPT_CHARS].decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(body)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or err
        text = err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)[: 64 * EXCERPT_CHARS]
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the raw text
        pass
    text = _CONTROL.sub(" ", clean_text(text[: 64 * EXCERPT_CHARS]))
    return redact(" ".join(text.split()), messages)[:EXCERPT_CHARS]


def redact(text: str, messages: list[dict[str, str]]) -> str:
    prompt_words = [w for m in messages for w in _WORD.findall(str(m.get("content", "")))]
    seen = {tuple(prompt_words[i : i + _SHINGLE]) for i in range(len(prompt_words) - _SHINGLE + 1)}
    words = _WORD.findall(text)
    hide = [False] * len(words)
    for i in range(len(words) - _SHINGLE + 1):
        if tuple(words[i : i + _SHINGLE]) in seen:
            hide[i : i + _SHINGLE] = [True] * _SHINGLE
    out: list[str] = []
    for w, h in zip(words, hide, strict=True):
        if not h:
            out.append(w)
        elif not out or out[-1] != "[…]":
            out.append("[…]")
    return " ".join(out)


def model_entry(base_url: str, model: str, api_key: str | None = None, timeout: float = 10.0) -> dict | None:
    """The endpoint's `/v1/models` entry for `model` (what `ehrmind serve` publishes about it), or None when
    the endpoint does not list it or cannot be asked within `timeout` seconds in all (a model list is optional
    to an OpenAI-compatible server), or its list is not JSON of at most `MAX_REPLY_BYTES`."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    where = public_url(base_url)
    try:
        with (
            http_client(httpx.Timeout(timeout), 1) as client,
            time_limit(time.monotonic() + timeout),
            client.stream("GET", endpoint_url(base_url, "/models"), headers=headers) as reply,
        ):
            reply.raise_for_status()
            raw = read_reply(reply, MAX_REPLY_BYTES, f"{where}/models")
        listed = json.loads(raw)
    except (httpx.HTTPError, OSError, ValueError, RecursionError, EndpointError) as e:
        log.debug("%s/models: %s", where, type(e).__name__)
        return None
    entries = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(entries, list):
        return None
    return next((e for e in entries if isinstance(e, dict) and e.get("id") == model), None)
