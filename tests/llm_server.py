"""A real local HTTP server speaking the OpenAI chat-completions API, for tests.

It listens on a free 127.0.0.1 port in a background thread (stdlib ``http.server``) and
answers ``POST /v1/chat/completions`` (plain JSON or ``"stream": true`` SSE, always with
``usage`` token counts). Tests script it:

- ``server.reply("text")`` or ``server.reply(lambda request: "text")``: the default answer
  (``request`` is the parsed JSON body). Without one it answers ``"ok"``.
- ``server.queue(*steps)``: one-shot steps used in order before the default, each one of
  ``Reply(content)``, ``Fail(status, retry_after=None)`` (429, 500, ...), ``Slow(seconds)``
  (sleeps past the client's timeout, then answers), ``Malformed()`` (a 200 whose body is not
  JSON) or a plain string (same as ``Reply``).
- ``server.requests``: every parsed request body received, in order (``server.calls`` counts).

Point twinengine at it through ``Settings``::

    Settings(..., llm_base_url=server.url, llm_api_key="test", llm_model="test-model",
             llm_backoff_s=0.01)
    # or the environment: TWINENGINE_LLM_BASE_URL=http://127.0.0.1:PORT/v1

In tests use the ``llm_server`` fixture (``tests/capability/conftest.py``) and its
``llm_settings`` / ``llm_ctx`` companions, which do exactly that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """Answer with ``content`` (text, or a function of the request body)."""

    content: str | Callable[[dict[str, Any]], str]
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Fail:
    """Answer with an HTTP error, optionally with a ``Retry-After`` header."""

    status: int = 500
    retry_after: float | None = None
    body: str = '{"error": {"message": "scripted failure"}}'


@dataclass
class Slow:
    """Sleep ``seconds`` before answering (to trip the client's timeout)."""

    seconds: float
    then: Reply | None = None


@dataclass
class Malformed:
    """A 200 whose body is not valid JSON."""

    body: str = '{"choices": [ {"message": '


Step = Reply | Fail | Slow | Malformed | str


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class LLMServer:
    """The scriptable OpenAI-compatible server (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._steps: list[Step] = []
        self._default: Reply = Reply("ok")
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # --- scripting -----------------------------------------------------------------------
    def reply(self, content: str | Callable[[dict[str, Any]], str]) -> None:
        """Set the default answer (text or a function of the request body)."""
        self._default = Reply(content)

    def queue(self, *steps: Step) -> None:
        """Add one-shot steps, used in order before the default answer."""
        with self._lock:
            self._steps.extend(steps)

    def reset(self) -> None:
        """Forget queued steps, recorded requests and the default answer."""
        with self._lock:
            self._steps.clear()
            self.requests.clear()
            self._default = Reply("ok")

    @property
    def calls(self) -> int:
        """How many chat-completion requests arrived."""
        return len(self.requests)

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> LLMServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down (sleeping ``Slow`` steps are cut short)."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving ---------------------------------------------------------------------------
    def _next(self, request: dict[str, Any]) -> Step:
        with self._lock:
            self.requests.append(request)
            return self._steps.pop(0) if self._steps else self._default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, '{"error": {"message": "not found"}}')
                    return
                try:
                    request = json.loads(raw)
                except ValueError:
                    self._send(400, '{"error": {"message": "bad json"}}')
                    return
                request["_headers"] = {k.lower(): v for k, v in self.headers.items()}
                step = server._next(request)
                if isinstance(step, str):
                    step = Reply(step)
                if isinstance(step, Slow):
                    server._closing.wait(step.seconds)
                    step = step.then or server._default
                if isinstance(step, Fail):
                    headers = {}
                    if step.retry_after is not None:
                        headers["Retry-After"] = f"{step.retry_after:g}"
                    self._send(step.status, step.body, headers)
                    return
                if isinstance(step, Malformed):
                    self._send(200, step.body)
                    return
                content = step.content(request) if callable(step.content) else step.content
                prompt_text = json.dumps(request.get("messages", []))
                usage = {
                    "prompt_tokens": step.prompt_tokens or _tokens(prompt_text),
                    "completion_tokens": step.completion_tokens or _tokens(content),
                }
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                model = request.get("model", "test-model")
                if request.get("stream"):
                    self._stream(model, content, usage)
                    return
                body = {
                    "id": f"chatcmpl-{server.calls}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
                self._send(200, json.dumps(body))

            def _stream(self, model: str, content: str, usage: dict[str, int]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = [content[i : i + 8] for i in range(0, len(content), 8)] or [""]
                for piece in pieces:
                    event = {
                        "object": "chat.completion.chunk",
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": piece}}],
                    }
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                final = {"object": "chat.completion.chunk", "model": model, "choices": [],
                         "usage": usage}
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        return Handler
