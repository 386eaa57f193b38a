"""The http model kind: one chat completion per row from an OpenAI-compatible endpoint.

Each actor keeps at most `concurrency` requests in flight, starts at most
`requests_per_second`, and retries connection errors, timeouts, 429 and 5xx
with exponential backoff (or the server's Retry-After).  The API key is read
from the cluster's environment and never appears in a message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import os
import string
import time
from dataclasses import dataclass
from typing import Any, Coroutine, Mapping, TypeVar

import aiohttp
import pandas as pd

from .predictor import ModelError, RowError, is_missing

T = TypeVar("T")

# the longest Retry-After honoured, so a confused server cannot stall a run for hours
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    model: str
    prompt: str
    system: str | None = None
    max_tokens: int | None = None
    temperature: float = 0.0
    concurrency: int = 8
    requests_per_second: float | None = None
    max_retries: int = 3
    timeout_s: float = 60.0
    backoff_s: float = 0.5
    api_key_env: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], uri: str | None, inputs: list[str]) -> HttpSettings:
        base_url = options.get("base_url") or uri
        if not base_url:
            raise ModelError("an http model needs its endpoint: the uri, or the option base_url")
        settings = cls(
            base_url=str(base_url).rstrip("/"),
            model=str(options.get("model", "")),
            prompt=str(options.get("prompt") or "{" + inputs[0] + "}"),
            system=options.get("system"),
            max_tokens=None if options.get("max_tokens") is None else int(options["max_tokens"]),
            temperature=float(options.get("temperature", 0.0)),
            concurrency=int(options.get("concurrency", 8)),
            requests_per_second=(None if options.get("requests_per_second") is None
                                 else float(options["requests_per_second"])),
            max_retries=int(options.get("max_retries", 3)),
            timeout_s=float(options.get("timeout_s", 60.0)),
            backoff_s=float(options.get("backoff_s", 0.5)),
            api_key_env=options.get("api_key_env"),
        )
        unknown = [f for f in settings.placeholders() if f not in inputs]
        if unknown:
            raise ModelError(f"the prompt names {', '.join(unknown)}, which are not input columns")
        if settings.concurrency < 1:
            raise ModelError("the http option concurrency must be at least 1")
        return settings

    def placeholders(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.prompt) if name]



# the pacing's clock and pause, one place each (tests replace them)
clock = time.monotonic


async def wait(seconds: float) -> None:
    """Pause the requests of a replica: its pacing and its backoff go through here."""
    await asyncio.sleep(seconds)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end, also from a thread that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class HttpPredictor:
    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.url = settings.base_url + "/chat/completions"
        self.headers = {"Content-Type": "application/json"}
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if not key:
                raise ModelError(f"the environment variable {settings.api_key_env} that should hold "
                                 "the API key is not set on this node")
            self.headers["Authorization"] = f"Bearer {key}"
        # when the next request may start; kept across batches so the rate holds for the actor
        self._next_start = 0.0

    def _body(self, prompt: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt}]
        if self.settings.system:
            messages.insert(0, {"role": "system", "content": self.settings.system})
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages,
                                "temperature": self.settings.temperature}
        if self.settings.max_tokens is not None:
            body["max_tokens"] = self.settings.max_tokens
        return body

    async def _pace(self) -> None:
        rate = self.settings.requests_per_second
        if not rate:
            return
        # one event loop thread: no await between reading and moving the slot
        now = clock()
        start = max(now, self._next_start)
        self._next_start = start + 1.0 / rate
        await wait(start - now)

    async def _complete(self, session: aiohttp.ClientSession, limit: asyncio.Semaphore,
                        row: int, prompt: str) -> str:
        body = self._body(prompt)
        attempts = self.settings.max_retries + 1
        last = ""
        for attempt in range(attempts):
            delay = self.settings.backoff_s * 2 ** attempt
            async with limit:
                await self._pace()
                try:
                    async with session.post(self.url, json=body, headers=self.headers) as response:
                        if response.status == 200:
                            reply = await response.json(content_type=None)
                            try:
                                return str(reply["choices"][0]["message"]["content"])
                            except (KeyError, IndexError, TypeError) as error:
                                raise RowError(row, f"{self.url} answered without a message: {error!r}")
                        detail = (await response.text())[:200].strip()
                        last = f"HTTP {response.status}" + (f": {detail}" if detail else "")
                        if response.status != 429 and response.status < 500:
                            raise RowError(row, f"{self.url} refused the request: {last}")
                        delay = _retry_after(response.headers.get("Retry-After")) or delay
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    last = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if attempt + 1 < attempts:
                await wait(delay)
        raise RowError(row, f"request to {self.url} failed after {attempts} attempts: {last}")

    async def _complete_all(self, prompts: list[str]) -> list[str]:
        limit = asyncio.Semaphore(self.settings.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.settings.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            return list(await asyncio.gather(*(self._complete(session, limit, i, p)
                                               for i, p in enumerate(prompts))))

    def prompts(self, batch: pd.DataFrame) -> list[str]:
        fields = self.settings.placeholders()
        columns = {f: batch[f].tolist() for f in fields}
        return [self.settings.prompt.format_map({f: "" if is_missing(columns[f][i]) else columns[f][i]
                                                 for f in fields})
                for i in range(len(batch))]

    def __call__(self, batch: pd.DataFrame) -> list[str]:
        if len(batch) == 0:
            return []
        return _run(self._complete_all(self.prompts(batch)))

