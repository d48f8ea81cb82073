"""Model providers: OpenAI-compatible HTTP endpoints (httpx) and in-process local models."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from twinengine.capability.router.schemas import ProviderConfig
from twinengine.errors import InvalidInput

log = logging.getLogger(__name__)


class ProviderError(Exception):
    """A call failed; ``retryable`` says whether the same provider may be tried again."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class Reply:
    """A provider's answer with its token usage."""

    text: str
    tokens_in: int
    tokens_out: int


@dataclass
class StreamState:
    """Usage reported at the end of a stream (filled in while it is consumed)."""

    tokens_in: int = 0
    tokens_out: int = 0
    chunks: list[str] = field(default_factory=list)


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for providers that report no usage."""
    return max(1, len(text) // 4)


class ModelProvider(ABC):
    """A chat model the router can call."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @abstractmethod
    def chat(self, messages: list[dict[str, Any]], *, timeout_s: float, json_mode: bool) -> Reply:
        """One completion; raises ``ProviderError``."""

    @abstractmethod
    def stream(
        self, messages: list[dict[str, Any]], *, timeout_s: float, state: StreamState
    ) -> Iterator[str]:
        """Text deltas of one completion; usage lands in ``state``."""

    def close(self) -> None:  # noqa: B027 (optional hook: most providers hold nothing)
        """Release connections."""


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code == 429 or resp.status_code >= 500:
        raise ProviderError(
            f"HTTP {resp.status_code}: {resp.text[:200]}",
            retryable=True,
            retry_after=_retry_after(resp),
        )
    if resp.status_code >= 400:
        raise ProviderError(f"HTTP {resp.status_code}: {resp.text[:200]}", retryable=False)


class HttpProvider(ModelProvider):
    """An OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers)

    def _body(self, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"model": self.config.model, "messages": messages, **extra}

    def chat(self, messages: list[dict[str, Any]], *, timeout_s: float, json_mode: bool) -> Reply:
        """POST /chat/completions and read the first choice."""
        extra: dict[str, Any] = {"temperature": 0}
        if json_mode:
            extra["response_format"] = {"type": "json_object"}
        try:
            resp = self._client.post(
                "/chat/completions", json=self._body(messages, **extra), timeout=timeout_s
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(f"timeout after {timeout_s:g}s", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ProviderError(f"connection failed: {exc}", retryable=True) from exc
        _raise_for(resp)
        try:
            data = resp.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # A garbled body is usually a proxy hiccup: worth one more try.
            raise ProviderError(
                f"malformed response body: {resp.text[:120]!r}", retryable=True
            ) from exc
        usage = data.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or estimate_tokens(json.dumps(messages)))
        tokens_out = int(usage.get("completion_tokens") or estimate_tokens(text))
        return Reply(text=text, tokens_in=tokens_in, tokens_out=tokens_out)

    def stream(
        self, messages: list[dict[str, Any]], *, timeout_s: float, state: StreamState
    ) -> Iterator[str]:
        """POST with ``stream: true`` and yield the SSE content deltas."""
        body = self._body(messages, stream=True, stream_options={"include_usage": True})
        try:
            with self._client.stream(
                "POST", "/chat/completions", json=body, timeout=timeout_s
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        event = json.loads(payload)
                    except ValueError as exc:
                        raise ProviderError("malformed stream event", retryable=False) from exc
                    usage = event.get("usage")
                    if usage:
                        state.tokens_in = int(usage.get("prompt_tokens") or 0)
                        state.tokens_out = int(usage.get("completion_tokens") or 0)
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            state.chunks.append(delta)
                            yield delta
        except httpx.TimeoutException as exc:
            raise ProviderError(f"timeout after {timeout_s:g}s", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ProviderError(f"connection failed: {exc}", retryable=True) from exc
        if not state.tokens_in:
            state.tokens_in = estimate_tokens(json.dumps(messages))
        if not state.tokens_out:
            state.tokens_out = estimate_tokens("".join(state.chunks))

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


# In-process models shipped in packages: name -> fn(messages, json_mode) -> text. Engines
# register theirs with ``register_local_model``; a route names them as ``local:NAME``.
LocalModel = Callable[[list[dict[str, Any]], bool], str]
LOCAL_MODELS: dict[str, LocalModel] = {}


def register_local_model(name: str, fn: LocalModel) -> None:
    """Make ``fn`` callable by routes as ``local:<name>`` (free, no network)."""
    LOCAL_MODELS[name] = fn


class LocalProvider(ModelProvider):
    """A model running in this process (cost 0)."""

    def _fn(self) -> LocalModel:
        name = self.config.name.removeprefix("local:")
        fn = LOCAL_MODELS.get(name)
        if fn is None:
            known = ", ".join(sorted(f"local:{k}" for k in LOCAL_MODELS)) or "none registered"
            raise ProviderError(f"unknown local model {name!r} ({known})", retryable=False)
        return fn

    def chat(self, messages: list[dict[str, Any]], *, timeout_s: float, json_mode: bool) -> Reply:
        """Run the local model."""
        try:
            text = self._fn()(messages, json_mode)
        except ProviderError:
            raise
        except Exception as exc:  # a local model's own failure moves on to the next route
            raise ProviderError(f"local model failed: {exc}", retryable=False) from exc
        return Reply(text, estimate_tokens(json.dumps(messages)), estimate_tokens(text))

    def stream(
        self, messages: list[dict[str, Any]], *, timeout_s: float, state: StreamState
    ) -> Iterator[str]:
        """A local model answers in one chunk."""
        reply = self.chat(messages, timeout_s=timeout_s, json_mode=False)
        state.tokens_in, state.tokens_out = reply.tokens_in, reply.tokens_out
        state.chunks.append(reply.text)
        yield reply.text


PROVIDER_KINDS: dict[str, type[ModelProvider]] = {"http": HttpProvider, "local": LocalProvider}


def make_provider(config: ProviderConfig) -> ModelProvider:
    """Build the provider a config describes."""
    if config.is_local:
        return LocalProvider(config)
    if not config.base_url:
        raise InvalidInput(f"provider {config.name!r} has no base_url")
    return HttpProvider(config)
