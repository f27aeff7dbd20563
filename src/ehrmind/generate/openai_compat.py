"""Generation through any OpenAI-compatible chat endpoint (`POST {base_url}/chat/completions`).

Same interface as `HFGenerator`: `generate(prompts, n) -> Generated` (completions and finish reasons). HTTP
through one pooled `httpx` client (connections are reused across requests and threads; `concurrency`
requests in flight at once).
Nothing leaves the machine unless the caller gives the URL.

- All `n` samples of a prompt are asked for in one request (`n`); a server that returns fewer choices
  (some providers ignore `n`) is asked again for the rest.
- `seeds` (one per prompt) are sent as the request's `seed`, so an endpoint that honours it (vLLM, OpenAI
  best-effort, `ehrmind serve`) samples reproducibly and a resumed run asks for what the first one did.
- Timeouts fit a CPU server that queues requests: connecting may take `CONNECT_TIMEOUT_S`, a reply
  `max(timeout, READ_SECONDS_PER_TOKEN * max_tokens)` (a read timeout shorter than the completion takes
  only turns a slow reply into a retry the server then generates twice).
- Failures that may pass are retried with exponential backoff (`backoff * 2**k`, capped at `max_backoff`):
  refused, reset or closed connections, timeouts, HTTP 408/409/429 and 5xx; a `Retry-After` header
  (seconds or an HTTP date) is honoured instead. A failure that would only repeat (a URL scheme or proxy
  httpx cannot use, a TLS handshake that fails: a certificate that does not verify, https to a plain-HTTP
  port) fails at once. The retry loop is ours rather
  than httpx's or the `openai` client's, because every message it writes must have prompt text removed
  (servers sometimes echo the input).
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

import dataclasses
import email.utils
import json
import logging
import math
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from ehrmind.errors import ConfigError, UserError
from ehrmind.generate.base import Capabilities, Generated
from ehrmind.generate.settings import GenerationSettings

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Statuses worth retrying: rate limits, timeouts and server-side failures (408/409 as OpenAI's own client)."""
MAX_RETRY_AFTER = 600.0
"""A `Retry-After` longer than this (seconds) is capped, so a misconfigured server cannot hang a run."""
EXCERPT_CHARS = 300
CONNECT_TIMEOUT_S = 10.0
"""Seconds to open a connection (at most `timeout`): a server that accepts none in this long is down or
unreachable, and the attempt is retried."""
READ_SECONDS_PER_TOKEN = 1.0
"""A reply may take this long per requested token (`max_tokens`) before the read times out, if longer than
`timeout`: a CPU server queues requests behind the batch it is generating, and larger models are slower;
a retry after a timeout only makes the server generate the request twice."""


class EndpointError(UserError, RuntimeError):
    """The endpoint refused the request or kept failing; `status` is the last HTTP status (None: no reply)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    def __init__(self, what: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(what)
        self.what, self.status, self.retry_after = what, status, retry_after


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
    ):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"the endpoint URL must be http(s), such as http://127.0.0.1:8000/v1, got {base_url!r}"
            )
        if max_retries < 0 or backoff < 0 or timeout <= 0 or concurrency < 1:
            raise ConfigError("need max_retries >= 0, backoff >= 0, timeout > 0 and concurrency >= 1")
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
        import httpx

        with self._count_lock:
            if self._http is None:
                for name in ("httpx", "httpcore"):  # one INFO line per request is noise; theirs if set
                    logger = logging.getLogger(name)
                    if logger.level == logging.NOTSET:
                        logger.setLevel(logging.WARNING)
                self._http = httpx.Client(
                    timeout=self._timeout(None),
                    limits=httpx.Limits(
                        max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                    ),
                    trust_env=False,  # a proxy from the environment must not see patient prompts unasked
                )
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
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                done = list(pool.map(lambda job: self._complete(job[0], n, job[1]), jobs))
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
        return self._send(self.body(messages, n, seed), messages, self._choices)

    def _send(self, body: dict[str, Any], messages: list[dict[str, str]], parse: Callable[[bytes], T]) -> T:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempt = 0
        while True:
            try:
                return parse(self._post_once(data, headers, messages, body.get("max_tokens")))
            except _Retryable as e:
                if attempt >= self.max_retries:
                    raise EndpointError(
                        f"{public_url(self.url)}: {e.what}; gave up after {attempt + 1} attempt(s) "
                        f"(--max-retries {self.max_retries})",
                        status=e.status,
                    ) from None
                delay = e.retry_after
                if delay is None:
                    delay = min(self.max_backoff, self.backoff * 2**attempt)
                attempt += 1
                log.warning(
                    "%s: %s; retry %d of %d in %.1f s",
                    public_url(self.url),
                    e.what,
                    attempt,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)

    def _post_once(
        self, data: bytes, headers: dict[str, str], messages: list[dict[str, str]], max_tokens: int | None
    ) -> bytes:
        import httpx

        client = self._client()
        with self._count_lock:
            self.requests_sent += 1
        try:
            resp = client.post(self.url, content=data, headers=headers, timeout=self._timeout(max_tokens))
        except (httpx.TransportError, OSError) as e:
            if not retryable(e):
                raise EndpointError(
                    f"{public_url(self.url)}: no reply ({type(e).__name__}: {e}); not retried"
                ) from None
            what = "no reply"
            if isinstance(e, httpx.ReadTimeout):
                what = f"no reply within {self.read_timeout(max_tokens):.0f} s"
            raise _Retryable(f"{what} ({type(e).__name__}: {e})") from None
        status = resp.status_code
        if 200 <= status < 300:
            return resp.content
        excerpt = error_excerpt(resp.content, messages)
        if status in RETRY_STATUS:
            raise _Retryable(f"HTTP {status} {excerpt}".rstrip(), status, parse_retry_after(resp.headers))
        hint = " (the base URL usually ends in /v1)" if status == 404 else ""
        raise EndpointError(
            f"{public_url(self.url)} refused the request: HTTP {status}{hint}: {excerpt or '(no body)'}",
            status=status,
        )

    def _choices(self, raw: bytes) -> list[tuple[str, str | None]]:
        try:
            obj = json.loads(raw)
            choices = sorted(obj["choices"], key=lambda c: c.get("index", 0))
            got = [
                (str((c.get("message") or {}).get("content") or ""), c.get("finish_reason")) for c in choices
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _Retryable("reply is not a chat completion (no choices[].message)") from None
        if not got:
            raise _Retryable("reply has no choices")
        return [(t, f if isinstance(f, str) else None) for t, f in got]


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
    try:
        first = json.loads(raw)["choices"][0]["logprobs"]["content"][0]
        pairs = [(str(t["token"]), float(t["logprob"])) for t in first.get("top_logprobs") or []]
        pairs = pairs or [(str(first["token"]), float(first["logprob"]))]
    except (ValueError, KeyError, IndexError, TypeError):
        raise EndpointError(
            "the reply has no choices[0].logprobs.content[0].top_logprobs: the server does not return "
            "log-probabilities (drop --logprobs)"
        ) from None
    return pairs


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
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), capped; None if absent."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


_WORD = re.compile(r"\S+")
_SHINGLE = 4


def error_excerpt(body: bytes, messages: list[dict[str, str]]) -> str:
    """The server's error message (OpenAI `{"error": {"message": …}}` or the raw body), at most
    EXCERPT_CHARS, with any run of 4+ words that also occurs in the prompt replaced by `[…]`."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or err
        text = err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)
    except ValueError:
        pass
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
    the endpoint does not list it or cannot be asked: a model list is optional to an OpenAI-compatible server."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        reply = httpx.get(
            endpoint_url(base_url, "/models"), headers=headers, timeout=timeout, trust_env=False
        )
        reply.raise_for_status()
        entries = reply.json().get("data") or []
    except (httpx.HTTPError, ValueError, AttributeError) as e:
        log.debug("%s/models: %s", public_url(base_url), type(e).__name__)
        return None
    return next((e for e in entries if isinstance(e, dict) and e.get("id") == model), None)
