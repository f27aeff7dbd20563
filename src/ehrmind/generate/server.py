"""`ehrmind serve`: a minimal OpenAI-compatible server over `HFGenerator`, for local teachers and tests.

Endpoints: `POST /v1/chat/completions` (messages, temperature, top_p, max_tokens / max_completion_tokens,
n, seed; no streaming), `GET /v1/models`, `GET /health`. Prompts are rendered with the model's own chat
template; a final assistant message is continued (prefill). Requests are served by a
`ThreadingHTTPServer` but generate one at a time (a lock), so a slow request only queues the others.
Binds to 127.0.0.1 by default; there is no authentication, so only bind elsewhere on a trusted network.
Request bodies and completions are never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.hf import GenerationSettings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_N = 64
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400 (OpenAI error type `invalid_request_error`)."""


class ChatBackend:
    """Turns OpenAI chat-completion request bodies into `generate` calls, one at a time."""

    def __init__(self, generator: Any, model_name: str | None = None):
        self.generator = generator
        self.model_name = model_name or str(getattr(generator, "name", "model"))
        self.lock = threading.Lock()
        self.requests_served = 0

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "ehrmind"}],
        }

    def complete(self, body: Any) -> dict[str, Any]:
        messages, n, settings = self._parse(body)
        with self.lock:
            old = self.generator.settings
            self.generator.settings = settings
            try:
                texts = self.generator.generate([messages], n=n)[0]
            except ConfigError as e:  # e.g. the prompt does not fit the model's context
                raise BadRequest(str(e)) from None
            finally:
                self.generator.settings = old
            usage = self._usage(messages, texts)
            self.requests_served += 1
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                for i, t in enumerate(texts)
            ],
            "usage": usage,
        }

    def _parse(self, body: Any) -> tuple[list[dict[str, str]], int, GenerationSettings]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        if body.get("stream"):
            raise BadRequest("streaming is not supported; send stream=false")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list")
        clean = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise BadRequest(f"messages[{i}] needs a role of system, user or assistant")
            content = m.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if not isinstance(content, str):
                raise BadRequest(f"messages[{i}].content must be a string")
            clean.append({"role": m["role"], "content": content})
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
            raise BadRequest(f"'n' must be an integer from 1 to {MAX_N}")
        base: GenerationSettings = self.generator.settings

        def get(key: str, default: Any) -> Any:  # absent or null: OpenAI's default
            return default if body.get(key) is None else body[key]

        try:
            settings = replace(
                base,
                max_new_tokens=int(get("max_completion_tokens", get("max_tokens", base.max_new_tokens))),
                temperature=float(get("temperature", 1.0)),
                top_p=float(get("top_p", 1.0)),
                seed=int(get("seed", base.seed)),
            )
        except (TypeError, ValueError) as e:  # ConfigError is a ValueError
            raise BadRequest(f"bad sampling parameter: {e}") from None
        if n > 1 and settings.temperature == 0:
            raise BadRequest("n > 1 with temperature 0 gives identical completions; set temperature > 0")
        return clean, n, settings

    def _usage(self, messages: list[dict[str, str]], texts: list[str]) -> dict[str, int]:
        tok = getattr(self.generator, "tokenizer", None)
        if tok is None or not hasattr(self.generator, "prompt_text"):
            return {}
        prompt = len(tok(self.generator.prompt_text(messages), add_special_tokens=False)["input_ids"])
        completion = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _handler(backend: ChatBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ehrmind-serve"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # request line only, at debug level
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, obj: Any) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

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
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._error(400, "the request body is not JSON")
                return
            try:
                self._send(200, backend.complete(body))
            except BadRequest as e:
                self._error(400, str(e))
            except Exception as e:  # report, keep serving; the message never holds the prompt
                log.exception("generation failed")
                self._error(500, f"generation failed: {type(e).__name__}", "server_error")

    return Handler


def make_server(generator: Any, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None):
    """A ready `ThreadingHTTPServer` (port 0 picks a free port: read `server.server_address`); call
    `serve_forever()` (in a thread for tests) and `shutdown()` + `server_close()` to stop."""
    if host not in LOOPBACK:
        log.warning(
            "serving on %s: anyone who can reach this address can use the model (no authentication)", host
        )
    server = ThreadingHTTPServer((host, port), _handler(ChatBackend(generator, model_name)))
    server.daemon_threads = True
    return server


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: GenerationSettings | None = None,
    *,
    device: str = "cpu",
    model_name: str | None = None,
    on_ready: Any = None,
) -> None:
    """Load `model` with HFGenerator and serve it until interrupted."""
    from ehrmind.generate.hf import HFGenerator

    generator = HFGenerator(model, settings or GenerationSettings(), device=device)
    server = make_server(generator, host, port, model_name=model_name or model)
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
