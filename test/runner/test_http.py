"""The http model kind against the fake OpenAI server: answers, bounded concurrency, retries, failures."""

from __future__ import annotations

from typing import Iterator

import pandas as pd
import pytest
from fake_openai import FakeOpenAI

from pg_ray_runner import httpmodel
from pg_ray_runner.models import make_predictor
from pg_ray_runner.predictor import ModelError, RowError
from pg_ray_runner.spec import Model


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def predictor(server: FakeOpenAI, **options: object):
    model = Model(name="chat", version=1, kind="http", uri=server.base_url)
    return make_predictor(model, None, ["title", "body"], {"model": "fake", "backoff_s": 0.01, **options})


def batch(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"title": [f"t{i}" for i in range(rows)], "body": [f"b{i}" for i in range(rows)]})


def test_answers_in_row_order_with_the_prompt_filled_in(server: FakeOpenAI) -> None:
    server.delay_s = 0.01
    frame = batch(30)
    frame.loc[3, "body"] = None
    predict = predictor(server, prompt="Summarise {title}: {body}", system="Be brief.", max_tokens=5)
    got = predict(frame)
    assert got[0] == "re: Summarise t0: b0"
    assert got[3] == "re: Summarise t3: "
    assert got == [f"re: Summarise t{i}: {'' if i == 3 else f'b{i}'}" for i in range(30)]
    body = server.bodies[0]
    assert body["model"] == "fake" and body["temperature"] == 0 and body["max_tokens"] == 5
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["role"] == "user"


def test_default_prompt_is_the_first_input(server: FakeOpenAI) -> None:
    assert predictor(server)(batch(2)) == ["re: t0", "re: t1"]


def test_concurrency_is_bounded(server: FakeOpenAI) -> None:
    server.delay_s = 0.05
    predictor(server, concurrency=3)(batch(24))
    assert server.requests == 24
    assert server.max_in_flight == 3, "three at once, never more: and not fewer, or nothing ran in parallel"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the predictor asks for, recorded instead of slept."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(httpmodel, "wait", record)
    # and a clock that stands still, so that the pauses are the schedule itself
    monkeypatch.setattr(httpmodel, "clock", lambda: 1000.0)
    return asked


def test_requests_per_second(server: FakeOpenAI, waits: list[float]) -> None:
    predictor(server, concurrency=8, requests_per_second=20)(batch(11))
    # eleven starts at 20 a second: the last is scheduled half a second after the first
    assert server.requests == 11
    assert waits == pytest.approx([i / 20 for i in range(11)])


def test_429_and_500_are_retried(server: FakeOpenAI) -> None:
    server.fail_next = [429, 500, 503]
    server.retry_after = "0"
    assert predictor(server, concurrency=1)(batch(2)) == ["re: t0", "re: t1"]
    assert server.requests == 5


def test_retry_after_is_honoured(server: FakeOpenAI, waits: list[float]) -> None:
    server.fail_next = [429]
    server.retry_after = "1"
    assert predictor(server)(batch(1)) == ["re: t0"]
    assert waits == [1.0]


def test_permanent_failure_names_the_row_and_the_attempts(server: FakeOpenAI) -> None:
    server.fail_always = 500
    with pytest.raises(RowError, match=r"failed after 3 attempts: HTTP 500") as raised:
        predictor(server, max_retries=2)(batch(1))
    assert raised.value.row == 0
    assert server.requests == 3


def test_client_errors_are_not_retried_and_the_key_is_sent_not_shown(server: FakeOpenAI,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server.api_key = "sk-secret-value"
    monkeypatch.setenv("FAKE_KEY", "sk-wrong")
    with pytest.raises(RowError, match="HTTP 401") as raised:
        predictor(server, api_key_env="FAKE_KEY")(batch(1))
    assert "sk-" not in str(raised.value)
    assert server.requests == 1
    monkeypatch.setenv("FAKE_KEY", "sk-secret-value")
    assert predictor(server, api_key_env="FAKE_KEY")(batch(1)) == ["re: t0"]


def test_unreachable_endpoint(server: FakeOpenAI) -> None:
    url = server.base_url
    server.stop()
    model = Model(name="chat", version=1, kind="http", uri=url)
    predict = make_predictor(model, None, ["title"], {"max_retries": 1, "backoff_s": 0.01})
    with pytest.raises(RowError, match=r"failed after 2 attempts: ClientConnectorError"):
        predict(batch(1))


def test_settings_errors(server: FakeOpenAI) -> None:
    with pytest.raises(ModelError, match="names nope, which are not input columns"):
        predictor(server, prompt="{nope}")
    with pytest.raises(ModelError, match="MISSING_KEY .* is not set"):
        predictor(server, api_key_env="MISSING_KEY")
