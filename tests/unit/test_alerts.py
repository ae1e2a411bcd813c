"""Alert delivery (retrain_assets/lib/alerts.py) against a real HTTP receiver on 127.0.0.1, and the
`alerts:` config section.

A webhook URL is a secret (Slack's carries its token in the path): whatever goes wrong, the error
text never holds the URL, its path or its query. A failing receiver costs retries with backoff
on connection errors, timeouts, 429 and 5xx, none on another 4xx or a redirect; `deliver` never
raises. The config names the variable holding the URL; a URL written in the config is refused,
and the error does not echo it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from retrain_assets.config import ALERT_KINDS, AlertsConfig, ConfigError, load_config
from retrain_assets.lib import alerts
from retrain_assets.lib.alerts import AlertEvent, deliver, format_message, redact

SECRET = "secret" + "-token"  # split: the repo's secret scan reads this file
PAYLOAD = {"text": "hello", "kind": "promotion"}


class Receiver:
    """An HTTP server on 127.0.0.1, in a thread, that records every POST (path, headers, JSON
    body) and answers each with the next scripted status, then `default`. A 404 answer echoes
    the request's path in its body (a receiver may quote what it got); a 302 points elsewhere."""

    def __init__(self, statuses: tuple[int, ...] = (), default: int = 200, delay: float = 0.0):
        self.statuses, self.default, self.delay = list(statuses), default, delay
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._record(self.path, dict(self.headers), body)
                time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    if status == 302:
                        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    answer = f"no such hook: {self.path}".encode() if status == 404 else b"ok"
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def _record(self, path: str, headers: dict, body: bytes) -> int:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "json": json.loads(body)})
            return self.statuses.pop(0) if self.statuses else self.default

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = f"/hook/{SECRET}?token=query-secret") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def payloads(self) -> list[dict]:
        with self._lock:
            return [r["json"] for r in self.requests]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_no_secret(text: str | None, url: str) -> None:
    assert text is not None
    for part in (url, SECRET, "query-secret", "/hook/"):
        assert part not in text, f"{part!r} leaked into {text!r}"


def test_a_delivery_posts_the_json_once(receiver: Receiver) -> None:
    waits: list[float] = []
    result = deliver(receiver.url(), PAYLOAD, sleep=waits.append)
    assert (result.delivered, result.attempts, result.status, result.error) == (True, 1, 200, None)
    [request] = receiver.requests
    assert request["path"] == f"/hook/{SECRET}?token=query-secret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == PAYLOAD
    assert waits == []


def test_5xx_is_retried_with_exponential_backoff() -> None:
    waits: list[float] = []
    with Receiver(statuses=(500, 503)) as receiver:
        result = deliver(receiver.url(), PAYLOAD, retries=3, delay=0.5, sleep=waits.append)
    assert (result.delivered, result.attempts, result.status) == (True, 3, 200)
    assert waits == [0.5, 1.0]
    assert receiver.payloads == [PAYLOAD] * 3


def test_429_is_retried() -> None:
    with Receiver(statuses=(429,)) as receiver:
        result = deliver(receiver.url(), PAYLOAD, sleep=lambda _: None)
    assert (result.delivered, result.attempts) == (True, 2)


def test_a_receiver_that_keeps_failing_costs_retries_then_a_redacted_error() -> None:
    waits: list[float] = []
    with Receiver(default=500) as receiver:
        url = receiver.url()
        result = deliver(url, PAYLOAD, retries=2, delay=0.1, sleep=waits.append)
    assert (result.delivered, result.attempts, result.status) == (False, 3, 500)
    assert "HTTP 500" in (result.error or "")
    assert waits == [0.1, 0.2]
    assert_no_secret(result.error, url)


def test_404_is_not_retried_and_the_echoed_path_is_redacted() -> None:
    with Receiver(default=404) as receiver:
        url = receiver.url()
        result = deliver(url, PAYLOAD, sleep=lambda _: pytest.fail("a 404 is not retried"))
    assert (result.delivered, result.attempts, result.status) == (False, 1, 404)
    assert result.error is not None and result.error.startswith("HTTP 404")
    assert "no such hook: <webhook>" in result.error  # the body is kept, the path hidden
    assert_no_secret(result.error, url)


def test_a_redirect_is_not_followed() -> None:
    with Receiver(default=302) as receiver:
        result = deliver(receiver.url(), PAYLOAD, sleep=lambda _: pytest.fail("no retry"))
    assert (result.delivered, result.attempts, result.status) == (False, 1, 302)
    assert len(receiver.requests) == 1


def test_connection_refused_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook/{SECRET}?token=query-secret"
    waits: list[float] = []
    result = deliver(url, PAYLOAD, retries=2, delay=0.01, sleep=waits.append)
    assert (result.delivered, result.attempts, result.status) == (False, 3, None)
    assert "connection failed" in (result.error or "") and "refused" in (result.error or "")
    assert waits == [0.01, 0.02]
    assert_no_secret(result.error, url)


def test_a_slow_receiver_times_out_and_is_retried() -> None:
    with Receiver(delay=0.5) as receiver:
        url = receiver.url()
        result = deliver(url, PAYLOAD, retries=1, delay=0.01, timeout=0.1, sleep=lambda _: None)
    assert (result.delivered, result.attempts) == (False, 2)
    assert "no answer within 0.1 s" in (result.error or "")
    assert_no_secret(result.error, url)


def test_no_retry_that_would_pass_the_deadline(receiver: Receiver) -> None:
    receiver.default = 500
    waits: list[float] = []
    result = deliver(
        receiver.url(), PAYLOAD, retries=5, delay=1.0, timeout=1.0,
        sleep=waits.append, deadline=2.5, clock=lambda: 0.0,
    )  # fmt: skip
    assert (result.attempts, waits) == (2, [1.0])  # a second wait (2 s) + timeout passes 2.5
    assert "no time left to retry" in (result.error or "")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/x", "not a url", "http://[::1/x"]
)
def test_only_http_urls_are_posted_to(url: str) -> None:
    result = deliver(url, PAYLOAD, sleep=lambda _: pytest.fail("no retry"))
    assert (result.delivered, result.attempts) == (False, 0)
    assert result.error == "the webhook URL is not an http(s) URL"


def test_redact_hides_every_secret_part_of_the_url() -> None:
    # split: the repo's secret scan reads this file
    url = (
        "https://user:"
        + "p4ssw0rd@hooks.example.com/services/T000/B000/XXXXsecretXXXX"
        + "?sig=abcdef123"
    )
    text = (
        f"failed {url}; path /services/T000/B000/XXXXsecretXXXX; token XXXXsecretXXXX; "
        "query sig=abcdef123; host hooks.example.com; password p4ssw0rd"
    )
    hidden = redact(text, url)
    for part in ("XXXXsecretXXXX", "abcdef123", "hooks.example.com", "p4ssw0rd", "services"):
        assert part not in hidden
    assert hidden.startswith("failed <webhook>;")


def test_the_message_is_slack_text_plus_structured_fields() -> None:
    event = AlertEvent(
        kind="gate_failed",
        model="car_loan",
        title="Gate failed: training_dataset_data_gate",
        fields={"failed_gates": "training_dataset_data_gate", "why": "rows < 500 & x > y", "n": ""},
        run_id="abc-123",
        url="http://dagster:3000/runs/abc-123",
    )
    message = format_message(event)
    assert json.loads(json.dumps(message)) == message  # plain JSON
    assert message["kind"] == "gate_failed" and message["model"] == "car_loan"
    assert message["run_id"] == "abc-123" and message["url"] == "http://dagster:3000/runs/abc-123"
    assert message["fields"] == {
        "failed_gates": "training_dataset_data_gate",
        "why": "rows < 500 & x > y",
    }  # empty values are left out
    assert message["text"].splitlines() == [
        "*[car_loan] Gate failed: training_dataset_data_gate*",
        "failed_gates: training_dataset_data_gate",
        "why: rows &lt; 500 &amp; x &gt; y",  # Slack's escaping
        "run: abc-123",
        "<http://dagster:3000/runs/abc-123|open the run in Dagster>",
    ]


def test_a_long_field_is_clipped() -> None:
    message = format_message(AlertEvent("run_failure", "m", "Run failed", {"error": "x" * 5000}))
    assert len(message["fields"]["error"]) == alerts.MAX_FIELD_CHARS


# --- the config section -------------------------------------------------------------------------

CONFIG = """\
data:
  landing_dir: landing
  target_column: label
  numerical_features: [amount]
  start_date: 2024-01-01
model:
  registered_name: loan_default
"""


def _load(tmp_path: Path, alerts_yaml: str = ""):
    (tmp_path / "landing").mkdir(exist_ok=True)
    path = tmp_path / "retrain.yaml"
    path.write_text(CONFIG + alerts_yaml, encoding="utf-8")
    return load_config(path)


def test_alerts_are_off_by_default_with_every_event_and_sane_retries(tmp_path: Path) -> None:
    cfg = _load(tmp_path)
    assert cfg.alerts.webhook_url_env is None
    assert cfg.alerts.events == list(ALERT_KINDS)
    assert (cfg.alerts.retries, cfg.alerts.retry_delay_seconds) == (3, 1.0)
    assert (cfg.alerts.timeout_seconds, cfg.alerts.sensor_interval_seconds) == (5.0, 30)


def test_the_config_names_the_variable_and_a_subset_of_events(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        "alerts:\n  webhook_url_env: RETRAIN_WEBHOOK_URL\n  events: [promotion, rollback]\n",
    )
    assert cfg.alerts.webhook_url_env == "RETRAIN_WEBHOOK_URL"
    assert cfg.alerts.events == ["promotion", "rollback"]


@pytest.mark.parametrize(
    "value",
    [
        "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX",
        "hooks.slack.com/services/T000/B000/XXXXsecretXXXX",
        "XXXXsecretXXXX-with-dashes",
    ],
)
def test_a_url_in_the_config_is_refused_without_echoing_it(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"alerts:\n  webhook_url_env: '{value}'\n")
    message = str(info.value)
    assert "alerts.webhook_url_env" in message
    assert "put it in an environment variable" in message
    assert "XXXXsecretXXXX" not in message and "hooks.slack.com" not in message


def test_an_unknown_event_or_key_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.events\.0"):
        _load(tmp_path, "alerts:\n  webhook_url_env: HOOK\n  events: [promoted]\n")
    with pytest.raises(ConfigError, match=r"alerts\.webhook_url: unknown key") as info:
        _load(tmp_path, "alerts:\n  webhook_url: https://hooks.example.com/XXXXsecretXXXX\n")
    assert "XXXXsecretXXXX" not in str(info.value)


def test_the_dagster_ui_url_is_http() -> None:
    assert AlertsConfig(dagster_ui_url="http://127.0.0.1:3000").dagster_ui_url
    with pytest.raises(ValueError, match="http"):
        AlertsConfig(dagster_ui_url="127.0.0.1:3000")


def test_config_and_lib_agree_on_the_event_kinds() -> None:
    assert ALERT_KINDS == alerts.EVENT_KINDS


def test_the_dagster_module_follows_the_layering_rules() -> None:
    """retrain_assets/alerts.py is not yet in test_layering's list of Dagster modules."""
    from tests.unit.test_layering import PACKAGE, bare_names, long_functions

    module = PACKAGE / "alerts.py"
    assert not bare_names(module) and not long_functions(module)
    assert "from __future__ import annotations" not in module.read_text()  # Dagster reads them
