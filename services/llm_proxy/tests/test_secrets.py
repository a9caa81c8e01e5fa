"""A virtual key never appears in logs, events, error bodies or spend records (issue 5 D4, §10.22).

Every key the tests issue is also registered as a canary: the session fails if any captured
log line (in-process services, and the process logs registered by other tests) contains one.
This test drives the paths most likely to leak and scans what they wrote, explicitly.
"""

from __future__ import annotations

import uuid

from proliferate.devkit.pytest_plugin import session_log_path
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb
from proliferate.scripted_model import Turn

from .conftest import VENDOR_KEY, Proxy, eventually


async def test_keys_never_reach_logs_events_error_bodies_or_records(proxy: Proxy) -> None:
    org = uuid.uuid4()
    issued = await proxy.issue(org)
    key = issued.key
    bodies: list[bytes] = []
    # Vendor errors that echo the key, before and after the first byte; bad input; a mid-stream abort.
    proxy.scripted.script(
        Turn(status=400, error_message=f"bad key {key} and vendor {VENDOR_KEY}"),
        Turn(status=500, times=3, error_message=f"boom {key}"),
        Turn(text=f"echo {key[:10]}", break_after_chunks=2, error_message=f"stream broke {key}"),
        Turn(text="fine", times=None),
    )
    bodies.append((await proxy.chat(key)).content)
    bodies.append((await proxy.chat(key)).content)
    body = {"model": "scripted-gpt", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    bodies.append((await proxy.chat(key, body)).content)
    bodies.append(
        (
            await proxy.chat(key, {"model": f"model-{key}", "messages": [{"role": "user", "content": "x"}]})
        ).content
    )
    bodies.append((await proxy.chat(key, {"messages": "not a list", "api_key": key})).content)
    bodies.append(
        (
            await proxy.http.post(
                f"{proxy.url}/v1/chat/completions",
                content=key.encode(),
                headers={"authorization": f"Bearer {key}"},
            )
        ).content
    )
    bodies.append((await proxy.chat(key + "x")).content)
    await proxy.rpc(
        "RevokeVirtualKeys",
        pb.RevokeVirtualKeysRequest(organization_id=str(org), virtual_key_id=issued.virtual_key_id),
    )

    async def refused() -> bool:
        response = await proxy.chat(key)
        bodies.append(response.content)
        return response.status_code == 401

    await eventually(refused, timeout=5)
    await proxy.wait_records(lambda rows: len(rows) >= 3 and all(r["status"] != "in_flight" for r in rows))

    secret = key.encode()
    assert [b for b in bodies if secret in b] == [], "a response body carried the key"
    assert all(VENDOR_KEY.encode() not in b for b in bodies), "a response body carried the vendor key"
    for row in proxy.query("SELECT payload, headers::text AS headers FROM outbox"):
        assert secret not in bytes(row["payload"]) and key not in row["headers"]
    for record in proxy.records():
        assert key not in repr(record)
    for row in proxy.query("SELECT * FROM virtual_keys"):
        assert key not in repr(row)
    log = session_log_path().read_text(errors="replace")
    assert key not in log and VENDOR_KEY not in log
    assert issued.key_prefix in log  # logs name keys by prefix only
