"""`python -m proliferate.scripted_model`: the server as its own process (as `make dev` runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from proliferate.devkit.infra import free_port


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "proliferate.scripted_model", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read() if process.stdout else "exited")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the scripted model did not start")


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    return out


def test_process_serves_the_dev_script_by_default() -> None:
    process, url = _start()
    try:
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "bash"}}],
        }
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10).json()
        assert "scripted model" in reply["choices"][0]["message"]["content"]
    finally:
        out = _stop(process)
    assert f"listening on {url}" in out


def test_process_loads_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [{"text": "from the file"}]}))
    process, url = _start("--script", str(script), "--api-key", "sk-file-test-000")
    try:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(
            f"{url}/v1/messages", json=body, headers={"x-api-key": "sk-file-test-000"}, timeout=10
        )
        assert reply.json()["content"][0]["text"] == "from the file"
    finally:
        _stop(process)


def test_bad_script_argument_exits_with_a_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proliferate.scripted_model", "--script", "/nonexistent.json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "neither a built-in" in result.stderr


@pytest.mark.parametrize("name", ["dev", "echo"])
def test_builtins_start(name: str) -> None:
    process, _ = _start("--script", name)
    _stop(process)
