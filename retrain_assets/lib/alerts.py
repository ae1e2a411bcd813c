"""Alert messages and their delivery to a webhook: plain Python (urllib, no Dagster).

`format_message` turns an `AlertEvent` into Slack-compatible JSON: `text` (one line per fact,
readable in a chat) plus the structured `kind`, `model`, `title`, `fields`, `run_id` and `url`
for any other receiver. `deliver` POSTs it: retried with exponential backoff on connection
errors, timeouts, HTTP 429 and 5xx; not retried on other 4xx or a redirect (not followed); it
never raises.

A webhook URL is a secret (Slack's carries its token in the path): nothing here logs or returns
it. A failed delivery's error text names the failure, with every part of the URL (host, path,
query) replaced by `<webhook>`.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:  # urllib.request (with http.client) is imported on the first delivery
    import urllib.error
    import urllib.request

RETRAINING_STARTED = "retraining_started"
GATE_FAILED = "gate_failed"
PROMOTION = "promotion"
ROLLBACK = "rollback"
RUN_FAILURE = "run_failure"
EVENT_KINDS = (RETRAINING_STARTED, GATE_FAILED, PROMOTION, ROLLBACK, RUN_FAILURE)

REDACTED = "<webhook>"
MAX_FIELD_CHARS = 1000
"""A field's value is cut to this many characters (an error's text can be long)."""
MAX_BODY_CHARS = 200
"""At most this much of an error response's body is kept in the error text."""


@dataclass(frozen=True)
class AlertEvent:
    """Something a person should hear about: what happened to which model, with its facts."""

    kind: str
    model: str
    title: str
    fields: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery went: attempts made, the last HTTP status, the (redacted) error."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


def _slack_escape(text: str) -> str:
    """Slack's text escaping: &, < and > are control characters in its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    text = str(value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_message(event: AlertEvent) -> dict[str, Any]:
    """The JSON body of an alert: Slack's `text` plus the event's structured fields."""
    fields = {key: _clip(value) for key, value in event.fields.items() if value not in (None, "")}
    lines = [f"*[{_slack_escape(event.model)}] {_slack_escape(event.title)}*"]
    lines += [f"{key}: {_slack_escape(value)}" for key, value in fields.items()]
    if event.run_id:
        lines.append(f"run: {_slack_escape(event.run_id)}")
    if event.url:
        lines.append(f"<{event.url}|open the run in Dagster>")
    return {
        "text": "\n".join(lines),
        "kind": event.kind,
        "model": event.model,
        "title": event.title,
        "fields": fields,
        "run_id": event.run_id,
        "url": event.url,
    }


def secret_parts(url: str) -> list[str]:
    """The parts of a URL that may carry its secret, longest first: the URL, its netloc, path,
    query, fragment, user and password, each path segment and query value (short ones, such as
    `hook` or a port, are left: they say nothing and would garble the text)."""
    try:
        split = urlsplit(url)
        parts = [url, split.netloc, split.path, split.query, split.fragment]
        parts += [split.username or "", split.password or "", split.hostname or ""]
        parts += split.path.split("/") + [v for _, v in parse_qsl(split.query)]
    except ValueError:  # an unparsable URL (e.g. a bad port): hide it whole
        parts = [url]
    return sorted({p for p in parts if len(p) >= 6 or p == url}, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """text with every secret part of url replaced by `<webhook>`."""
    for part in secret_parts(url):
        text = text.replace(part, REDACTED)
    return text


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """The opener every POST goes through, built on the first delivery: urllib.request and
    http.client cost ~10 ms to import, in every process that loads the code location."""
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        """A redirect is a failure, not followed: it would POST the alert somewhere else."""

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    return urllib.request.build_opener(_NoRedirect())


def _error_body(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(MAX_BODY_CHARS).decode("utf-8", errors="replace")
    except Exception:  # the body is a nicety
        return ""
    body = " ".join(body.split())
    return f" ({body})" if body else ""


def post_once(url: str, body: bytes, timeout: float) -> tuple[int | None, str | None, bool]:
    """One POST: (HTTP status, error text or None, whether a retry may help). Never raises."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "retrain-assets-alerts"},
    )
    try:
        with _opener().open(request, timeout=timeout) as response:
            return response.status, None, False
    except urllib.error.HTTPError as exc:
        retry = exc.code == 429 or exc.code >= 500
        return exc.code, f"HTTP {exc.code} {exc.reason}{_error_body(exc)}", retry
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return None, f"no answer within {timeout:g} s", True
        return None, f"connection failed: {exc.reason}", True
    except TimeoutError:
        return None, f"no answer within {timeout:g} s", True
    except OSError as exc:  # reset connections, broken pipes, remote disconnects
        return None, f"connection failed: {type(exc).__name__}: {exc}", True
    except Exception as exc:  # an alert must never break its caller
        return None, f"{type(exc).__name__}: {exc}", False


def is_http_url(url: str) -> bool:
    try:
        split = urlsplit(url)
        return split.scheme in ("http", "https") and bool(split.hostname)
    except ValueError:
        return False


def deliver(
    url: str,
    payload: Mapping[str, Any],
    retries: int = 3,
    delay: float = 1.0,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DeliveryResult:
    """POST payload as JSON to url: up to 1 + retries attempts, waiting delay, 2 x delay, ...
    between them, and no retry that could not finish before `deadline` (a `clock` time). Never
    raises; the result's error text never holds the URL."""
    if not is_http_url(url):
        return DeliveryResult(False, 0, None, "the webhook URL is not an http(s) URL")
    body = json.dumps(payload, default=str).encode("utf-8")
    attempts, status, error = 0, None, None
    for attempt in range(retries + 1):
        attempts = attempt + 1
        status, error, retry = post_once(url, body, timeout)
        if error is None:
            return DeliveryResult(True, attempts, status)
        wait = delay * 2**attempt
        if not retry or attempt == retries:
            break
        if deadline is not None and clock() + wait + timeout > deadline:
            error += "; no time left to retry"
            break
        sleep(wait)
    return DeliveryResult(False, attempts, status, redact(f"{error}", url))
