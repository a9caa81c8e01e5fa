"""Bad input gets the dialect's typed error and the right status, never a trace or a key (§10.17, 18)."""

from __future__ import annotations

import pytest
from proliferate.scripted_model import Turn

from .conftest import Proxy

GOOD = {"model": "scripted-gpt", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_GOOD = {
    "model": "scripted-claude",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}


def assert_clean(body: bytes, key: str) -> None:
    text = body.decode()
    assert "Traceback" not in text and 'File "' not in text
    assert key not in text


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("/v1/chat/completions", {**GOOD, "model": "no-such-model"}, 404, "model_not_found"),
        ("/v1/messages", {**ANTHROPIC_GOOD, "model": "no-such-model"}, 404, "model_not_found"),
        ("/v1/chat/completions", {**GOOD, "model": "steady"}, 403, "model_not_allowed"),
        ("/v1/chat/completions", {**GOOD, "model": "unconfigured"}, 503, "model_unavailable"),
        ("/v1/chat/completions", {**GOOD, "messages": []}, 400, "invalid_request"),
        ("/v1/chat/completions", {**GOOD, "temperature": "hot"}, 400, "invalid_request"),
        ("/v1/chat/completions", {**GOOD, "n": 2}, 400, "invalid_request"),
        ("/v1/chat/completions", {"messages": GOOD["messages"]}, 400, "invalid_request"),
        ("/v1/chat/completions", [1, 2], 400, "invalid_request"),
        (
            "/v1/messages",
            {k: v for k, v in ANTHROPIC_GOOD.items() if k != "max_tokens"},
            400,
            "invalid_request",
        ),
        ("/v1/messages", {**ANTHROPIC_GOOD, "max_tokens": 0}, 400, "invalid_request"),
    ],
)
async def test_refusals(proxy: Proxy, path: str, payload: object, status: int, code: str) -> None:
    issued = await proxy.issue(allowed_models=["scripted-gpt", "scripted-claude", "unconfigured"])
    response = await proxy.http.post(f"{proxy.url}{path}", json=payload, headers={"x-api-key": issued.key})
    assert response.status_code == status
    body = response.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == code
    else:
        assert body["error"]["code"] == code and set(body["error"]) == {"type", "code", "message"}
    assert_clean(response.content, issued.key)
    assert proxy.scripted.requests == []
    assert proxy.records() == []


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_malformed_json_is_400(proxy: Proxy, path: str) -> None:
    issued = await proxy.issue()
    response = await proxy.http.post(
        f"{proxy.url}{path}",
        content=b'{"model": "scripted-gpt", "messages": [',
        headers={"x-api-key": issued.key, "content-type": "application/json"},
    )
    assert response.status_code == 400
    text = response.text
    assert "invalid_request" in text and "not valid JSON" in text
    assert_clean(response.content, issued.key)


async def test_body_over_32_mib_is_413(proxy: Proxy) -> None:
    issued = await proxy.issue()
    big = (
        b'{"model": "scripted-gpt", "messages": [{"role": "user", "content": "'
        + b"x" * (33 * 1024 * 1024)
        + b'"}]}'
    )
    response = await proxy.http.post(
        f"{proxy.url}/v1/chat/completions", content=big, headers={"x-api-key": issued.key}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    async def chunks():  # no content-length: the limit holds while reading
        for start in range(0, len(big), 1024 * 1024):
            yield big[start : start + 1024 * 1024]

    streamed = await proxy.http.post(
        f"{proxy.url}/v1/messages", content=chunks(), headers={"x-api-key": issued.key}
    )
    assert streamed.status_code == 413
    assert streamed.json() == {
        "type": "error",
        "error": {"type": "request_too_large", "message": "the request body is too large"},
    }
    assert proxy.scripted.requests == []


async def test_a_body_just_under_the_limit_is_served(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="big ok"))
    content = "y" * (2 * 1024 * 1024)
    response = await proxy.chat(issued.key, {**GOOD, "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200
    assert proxy.scripted.requests[0].body["messages"][0]["content"] == content


@pytest.mark.parametrize(
    ("path", "payload", "expected"),
    [
        (
            "/v1/chat/completions",
            GOOD,
            {"error": {"type": "api_error", "code": "internal_error", "message": "internal error"}},
        ),
        (
            "/v1/messages",
            ANTHROPIC_GOOD,
            {"type": "error", "error": {"type": "internal_error", "message": "internal error"}},
        ),
    ],
)
async def test_an_unexpected_failure_is_a_500_in_the_dialect_without_trace_or_key(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, path: str, payload: dict[str, object], expected: object
) -> None:
    issued = await proxy.issue()
    assert proxy.running is not None and proxy.running.parts.http is not None

    async def broken(*args: object) -> None:
        raise RuntimeError(f"bug while holding {issued.key}")

    monkeypatch.setattr(proxy.running.parts.http.app.service, "handle", broken)
    response = await proxy.http.post(f"{proxy.url}{path}", json=payload, headers={"x-api-key": issued.key})
    assert response.status_code == 500
    assert response.json() == expected
    assert_clean(response.content, issued.key)
