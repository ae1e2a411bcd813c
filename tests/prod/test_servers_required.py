"""Under CI a missing server fails the production tests instead of skipping them: a green run
must mean they ran. Checked against a port that is bound but not listening, so the real servers
stay up."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.prod.conftest import START, require


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # held, never listening: connections are refused
        yield s.getsockname()[1]


def _outcome(server: str, port: int) -> pytest.ExceptionInfo:
    """What require() raised; a skip or a failure is caught here, so neither ends this test."""
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as outcome:
        require(server, "127.0.0.1", port)
    return outcome


@pytest.mark.parametrize("ci", ["true", "1"])
@pytest.mark.parametrize("server", sorted(START))
def test_under_ci_a_missing_server_fails_with_the_command(
    monkeypatch, closed_port: int, ci: str, server: str
) -> None:
    monkeypatch.setenv("CI", ci)
    failure = _outcome(server, closed_port)
    assert failure.type is pytest.fail.Exception
    assert f"no {server} server answers on 127.0.0.1:{closed_port}" in str(failure.value)
    assert START[server] in str(failure.value)


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_a_missing_server_skips(monkeypatch, closed_port: int, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    skip = _outcome("Redis", closed_port)
    assert skip.type is pytest.skip.Exception
    assert "no Redis server answers" in str(skip.value)


def test_a_server_that_answers_is_required_without_a_word(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        require("Redis", "127.0.0.1", server.getsockname()[1])
