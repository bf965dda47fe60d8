"""An OpenAI-compatible chat-completions server as a generator (stdlib only: urllib + threads).

Works with OpenAI, vLLM, SGLang, TGI, llama.cpp's server, LiteLLM, ... :
``POST <endpoint>/chat/completions`` with ``model``, ``messages``,
``temperature``, ``top_p``, ``max_tokens``, ``n`` and ``seed``. A server that
ignores ``n`` is asked again until every sample is there.

Failure handling, per request:

* 429 and 5xx, timeouts and dropped connections are retried with exponential
  backoff and jitter (``base * 2**attempt``, capped, the wait drawn from its
  upper half). A ``Retry-After`` header (seconds or an HTTP date) on 429/503
  sets the wait instead, and a 429 pauses *every* worker until then: one
  rate-limit reply means the whole client is too fast.
* 401/403/404 stop the run at once (key, permission or URL is wrong; retrying
  cannot help).
* Other 4xx (e.g. a prompt over the context length) fail that record only: it
  is written with an ``error`` and the pipeline drops it as ``generator_error``.
* A request still failing after ``max_retries`` stops the run; rerunning
  resumes where it stopped.

Concurrency is bounded by ``concurrency`` worker threads; results are written
by the calling thread only (append, flush, fsync per record).
"""

from __future__ import annotations

import concurrent.futures as cf
import email.utils
import hashlib
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence


RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
FATAL_STATUS = frozenset({401, 403, 404})


class GeneratorError(RuntimeError):
    """The server cannot be used (bad key or URL, or still failing after all retries)."""


class RequestRejected(Exception):
    """The server refused this one request for good (a 4xx other than auth/not-found)."""


def chat_url(endpoint: str) -> str:
    """``http://host:8000/v1`` -> ``http://host:8000/v1/chat/completions`` (a full URL is kept)."""
    endpoint = endpoint.rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
    return endpoint if endpoint.endswith("/chat/completions") else endpoint + "/chat/completions"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _request_seed(seed: int, key: str, attempt: int) -> int:
    blob = f"{seed}/{key}/{attempt}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


class HTTPGenerator:
    """Chat completions from an OpenAI-compatible endpoint.

    Args:
      endpoint: base URL (``http://localhost:8000/v1``) or the full
        ``.../chat/completions`` URL.
      model_name: the ``model`` field of each request.
      api_key_env: environment variable holding the API key (sent as
        ``Authorization: Bearer``); unset means no header (local servers).
      temperature, top_p, max_new_tokens: sampling settings of every request.
      concurrency: requests in flight at most.
      max_retries: retries of one request before the run stops.
      timeout: seconds per HTTP request.
      backoff_base, backoff_max: exponential backoff range in seconds.
      max_retry_after: longest ``Retry-After`` honoured (seconds).
      system_prompt: optional system message before each user message.
      sleep: injectable for tests.
    """

    bare_answer_prompts = False

    def __init__(self, endpoint: str, model_name: str, *, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.7, top_p: float = 1.0, max_new_tokens: int = 1024, concurrency: int = 16,
                 max_retries: int = 8, timeout: float = 300.0, backoff_base: float = 1.0, backoff_max: float = 60.0,
                 max_retry_after: float = 600.0, system_prompt: str | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not model_name:
            raise ValueError("model_name is required for an HTTP generator")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.url = chat_url(endpoint)
        self.model_name = model_name
        self.api_key_env = api_key_env
        self.api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not self.api_key:
            logging.info("%s is not set: requests carry no Authorization header", api_key_env)
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.system_prompt = system_prompt
        self._sleep = sleep
        self._lock = threading.Lock()
        self._resume_at = 0.0  # monotonic time before which no request is sent (after a 429)
        self.counters = {"requests": 0, "retries": 0, "rate_limited": 0, "rejected": 0}
        self.name = f"http:{model_name}@{self.url}"

    def settings(self) -> dict:
        return {"generator": self.name, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "system_prompt": self.system_prompt}

    # ----- one request -----

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return cap / 2 + random.uniform(0, cap / 2)  # jitter: workers that failed together retry apart

    def _wait_for_gate(self) -> None:
        while True:
            with self._lock:
                wait = self._resume_at - time.monotonic()
            if wait <= 0:
                return
            self._sleep(wait)

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            self._wait_for_gate()
            self._count("requests")
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                try:
                    return json.loads(payload)
                except ValueError:
                    last = f"invalid JSON in the response: {payload[:200]!r}"
                    delay = self._backoff(attempt)
            except urllib.error.HTTPError as e:
                detail = e.read()[:500].decode("utf-8", "replace")
                last = f"HTTP {e.code}: {detail}"
                if e.code in FATAL_STATUS:
                    raise GeneratorError(f"{self.url}: {last} (check --endpoint, --model_name and ${self.api_key_env})"
                                         ) from None
                if e.code not in RETRY_STATUS and 400 <= e.code < 500:
                    raise RequestRejected(last) from None
                retry_after = parse_retry_after(e.headers.get("Retry-After")) if e.code in (429, 503) else None
                if retry_after is not None:
                    delay = min(retry_after, self.max_retry_after) + random.uniform(0, 0.1)
                else:
                    delay = self._backoff(attempt)
                if e.code == 429:
                    self._count("rate_limited")
                    with self._lock:  # slow every worker down, not just this one
                        self._resume_at = max(self._resume_at, time.monotonic() + delay)
            except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {e}"
                delay = self._backoff(attempt)
            if attempt == self.max_retries:
                break
            self._count("retries")
            logging.debug("%s: retry %d in %.1fs after %s", self.url, attempt + 1, delay, last)
            self._sleep(delay)
        raise GeneratorError(f"{self.url}: still failing after {self.max_retries + 1} attempts; last: {last}")

    def complete(self, prompt: str, num_samples: int, seed: int, key: str) -> list[dict]:
        """``num_samples`` completions of one user message: ``[{"text", "num_tokens", "finish_reason"}]``."""
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        samples: list[dict] = []
        for call in range(num_samples):  # a server that ignores n answers one at a time
            want = num_samples - len(samples)
            body = {"model": self.model_name, "messages": messages, "temperature": self.temperature,
                    "top_p": self.top_p, "max_tokens": self.max_new_tokens, "n": want,
                    "seed": _request_seed(seed, key, call)}
            reply = self._post(body)
            choices = reply.get("choices") if isinstance(reply, dict) else None
            if not isinstance(choices, list) or not choices:
                raise RequestRejected(f"response without choices: {str(reply)[:200]}")
            usage = reply.get("usage") or {}
            tokens = usage.get("completion_tokens")
            for c in choices[:want]:
                message = c.get("message") or {}
                text = message.get("content") if isinstance(message, dict) else None
                if text is None:
                    text = c.get("text") or ""  # legacy completions-style choice
                samples.append({
                    "text": text, "finish_reason": c.get("finish_reason"),
                    "num_tokens": tokens // len(choices) if isinstance(tokens, int) else None,
                })
            if len(samples) >= num_samples:
                break
        return samples

    # ----- a stage -----

    def run_stage(self, records: Sequence[dict], path: str, *, num_samples: int, seed: int,
                  progress: bool = True, desc: str = "") -> None:
        from mathjax.sample import runner  # imported here: it pulls in JAX, which HTTP runs never need

        runner.check_unique_ids(records)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        done = {str(r["id"]) for r in runner.read_output(path, repair=True)}
        todo = [r for r in records if str(r["id"]) not in done]
        if not todo:
            return
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="q", desc=desc or "requests", dynamic_ncols=True)

        def work(record: dict) -> dict:
            line = {"id": record["id"], "question": record["question"], "answer": None,
                    "prompt": record["question"]}
            try:
                line["samples"] = self.complete(record["question"], num_samples, seed, str(record["id"]))
            except RequestRejected as e:
                self._count("rejected")
                line["samples"], line["error"] = [], str(e)
            return line

        pending: set[cf.Future] = set()
        queue = iter(todo)
        with open(path, "a", encoding="utf-8") as out, cf.ThreadPoolExecutor(self.concurrency) as pool:
            try:
                # A window of 2x concurrency keeps every worker busy without a future per record.
                for record in queue:
                    pending.add(pool.submit(work, record))
                    if len(pending) >= 2 * self.concurrency:
                        break
                while pending:
                    finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        line = future.result()  # a GeneratorError stops the stage here
                        out.write(json.dumps(line, ensure_ascii=False) + "\n")
                        out.flush()
                        os.fsync(out.fileno())
                        if bar is not None:
                            bar.update(1)
                        nxt = next(queue, None)
                        if nxt is not None:
                            pending.add(pool.submit(work, nxt))
            finally:
                for future in pending:
                    future.cancel()
                if bar is not None:
                    bar.close()
