"""The `proliferate` CLI inside every sandbox (agent-contract.md §4.3).

JSON on stdout, messages on stderr; exit 0 ok, 1 the operation failed, 2 a usage error (missing flag,
bad JSON, missing token). `services` talks to sandbox-mcp (connection refused retried 10 times 1 s, 30 s per
request); `actions` talks to the gateway with the sandbox token (120 s per request, transport failures
retried with the same idempotency key). The token comes from the environment only, never from flags.
There are no grant commands: grants are made by people.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from typing import Any, NoReturn

import httpx
import msgspec
from proliferate.sandbox_mcp.layout import Layout, SupervisorConfig

MCP_TIMEOUT_S = 30.0
MCP_CONNECT_RETRIES = 10
GATEWAY_TIMEOUT_S = 120.0
GATEWAY_RETRY_DELAYS_S = (1.0, 2.0, 4.0)
POLL_WAIT_S = 25
POLL_BUDGET_S = 15 * 60
TERMINAL_FAILURES = ("denied", "failed", "expired")


class Usage(Exception):
    pass


class Failed(Exception):
    pass


def _out(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")


def _token() -> str:
    token = os.environ.get("SANDBOX_MCP_AUTH_TOKEN")
    if not token:
        raise Usage("SANDBOX_MCP_AUTH_TOKEN is not set: run this inside a Proliferate sandbox")
    return token


def _error_text(res: httpx.Response) -> str:
    try:
        body = res.json()
    except ValueError:
        return f"HTTP {res.status_code}: {res.text[:500]}"
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"{err.get('code', res.status_code)}: {err.get('message', '')}"
    if isinstance(err, str):
        return err
    return f"HTTP {res.status_code}: {json.dumps(body)[:500]}"


# --- sandbox-mcp ------------------------------------------------------------------------------------


def _mcp_url() -> str:
    explicit = os.environ.get("PROLIFERATE_MCP_URL")
    if explicit:
        return explicit.rstrip("/")
    try:
        config = msgspec.json.decode(Layout.from_env().supervisor_json.read_bytes(), type=SupervisorConfig)
        return f"http://127.0.0.1:{config.ports.api}"
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return "http://127.0.0.1:4000"


def mcp(method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {_token()}"}
    url = _mcp_url() + path
    for attempt in range(MCP_CONNECT_RETRIES + 1):
        try:
            return httpx.request(method, url, headers=headers, timeout=MCP_TIMEOUT_S, **kwargs)
        except httpx.ConnectError:
            if attempt == MCP_CONNECT_RETRIES:
                raise Failed(f"sandbox-mcp is not reachable at {_mcp_url()}") from None
            time.sleep(1.0)  # it may still be starting
        except httpx.HTTPError as exc:
            raise Failed(f"sandbox-mcp request failed: {type(exc).__name__}") from None
    raise AssertionError("unreachable")


def _mcp_json(res: httpx.Response) -> Any:
    if res.status_code >= 400:
        raise Failed(_error_text(res))
    return res.json()


def services_list(_: argparse.Namespace) -> int:
    _out(_mcp_json(mcp("GET", "/api/services")))
    return 0


def services_start(args: argparse.Namespace) -> int:
    body = {"name": args.name, "command": args.command, **({"cwd": args.cwd} if args.cwd else {})}
    _out(_mcp_json(mcp("POST", "/api/services", json=body)))
    return 0


def services_stop(args: argparse.Namespace) -> int:
    _out(_mcp_json(mcp("DELETE", f"/api/services/{args.name}")))
    return 0


def services_restart(args: argparse.Namespace) -> int:
    listing = _mcp_json(mcp("GET", "/api/services"))
    current = next((s for s in listing.get("services", []) if s.get("name") == args.name), None)
    if current is None:
        raise Failed(f"no service named {args.name}")
    _mcp_json(mcp("DELETE", f"/api/services/{args.name}"))
    body = {
        "name": args.name,
        "command": current["command"],
        **({"cwd": current["cwd"]} if current.get("cwd") else {}),
    }
    _out(_mcp_json(mcp("POST", "/api/services", json=body)))
    return 0


def services_expose(args: argparse.Namespace) -> int:
    _out(_mcp_json(mcp("POST", "/api/expose", json={"port": args.port})))
    return 0


def services_logs(args: argparse.Namespace) -> int:
    params = {"follow": "1"} if args.follow else {}
    headers = {"Authorization": f"Bearer {_token()}"}
    timeout = httpx.Timeout(MCP_TIMEOUT_S, read=None if args.follow else MCP_TIMEOUT_S)
    try:
        with httpx.stream(
            "GET", f"{_mcp_url()}/api/logs/{args.name}", params=params, headers=headers, timeout=timeout
        ) as res:
            if res.status_code >= 400:
                res.read()
                raise Failed(_error_text(res))
            event = None
            for line in res.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event != "end":
                    sys.stdout.write(line[len("data: ") :] + "\n")
                    sys.stdout.flush()
                elif not line:
                    event = None
    except httpx.HTTPError as exc:
        raise Failed(f"sandbox-mcp request failed: {type(exc).__name__}") from None
    return 0


# --- gateway (actions) ------------------------------------------------------------------------------


def _gateway() -> tuple[str, dict[str, str]]:
    token = _token()
    base = os.environ.get("PROLIFERATE_GATEWAY_URL")
    session = os.environ.get("PROLIFERATE_SESSION_ID")
    if not base or not session:
        raise Usage("PROLIFERATE_GATEWAY_URL and PROLIFERATE_SESSION_ID must be set")
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Proliferate-Contract": os.environ.get("PROLIFERATE_CONTRACT_VERSION", "1"),
    }
    return f"{base.rstrip('/')}/v1/sessions/{session}/actions", headers


def gateway(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One gateway call; transport failures are retried with the identical request (same key)."""
    base, headers = _gateway()
    for attempt in range(len(GATEWAY_RETRY_DELAYS_S) + 1):
        try:
            return httpx.request(method, base + path, headers=headers, timeout=GATEWAY_TIMEOUT_S, **kwargs)
        except httpx.TransportError as exc:
            if attempt == len(GATEWAY_RETRY_DELAYS_S):
                raise Failed(f"the gateway is not reachable: {type(exc).__name__}") from None
            time.sleep(GATEWAY_RETRY_DELAYS_S[attempt])
    raise AssertionError("unreachable")


def actions_list(_: argparse.Namespace) -> int:
    res = gateway("GET", "/available")
    if res.status_code >= 400:
        raise Failed(_error_text(res))
    _out(res.json())
    return 0


def actions_guide(args: argparse.Namespace) -> int:
    res = gateway("GET", f"/guide/{args.source}")
    if res.status_code >= 400:
        raise Failed(_error_text(res))
    try:
        body = res.json()
        text = (
            body.get("guide") or body.get("markdown") or json.dumps(body, indent=2)
            if isinstance(body, dict)
            else body
        )
    except ValueError:
        text = res.text
    sys.stdout.write(str(text).rstrip("\n") + "\n")
    return 0


def _result_of(body: dict[str, Any]) -> Any:
    if "result" in body:
        return body["result"]
    inv = body.get("invocation") or {}
    return inv.get("result")


def _failure_of(body: dict[str, Any], fallback: str) -> str:
    inv = body.get("invocation") or {}
    err = body.get("error") or inv.get("error") or inv.get("denied_reason") or fallback
    if isinstance(err, dict):
        return f"{err.get('code', 'error')}: {err.get('message', '')}"
    return str(err)


def actions_run(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params) if args.params is not None else {}
    except ValueError as exc:
        raise Usage(f"--params is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise Usage("--params must be a JSON object")
    body = {
        "source_id": args.source,
        "action_id": args.action,
        "params": params,
        "idempotency_key": str(uuid.uuid4()),
    }
    res = gateway("POST", "/invoke", json=body)
    if res.status_code == 200:
        _out(_result_of(res.json()))
        return 0
    if res.status_code != 202:
        raise Failed(
            _error_text(res) if res.status_code not in (403, 502) else _failure_of(_safe_json(res), "denied")
        )
    invocation = (res.json().get("invocation") or {}).get("id")
    if not invocation:
        raise Failed("the gateway answered 202 without an invocation id")
    _err("Waiting for approval...")
    return _wait_for(invocation)


def _safe_json(res: httpx.Response) -> dict[str, Any]:
    try:
        body = res.json()
    except ValueError:
        return {"error": f"HTTP {res.status_code}"}
    return body if isinstance(body, dict) else {"error": str(body)}


def _wait_for(invocation: str) -> int:
    deadline = time.monotonic() + POLL_BUDGET_S
    while time.monotonic() < deadline:
        res = gateway("GET", f"/invocations/{invocation}", params={"wait": str(POLL_WAIT_S)})
        if res.status_code >= 500:
            time.sleep(1.0)
            continue
        if res.status_code >= 400:
            raise Failed(_error_text(res))
        body = res.json()
        status = (body.get("invocation") or {}).get("status")
        if status == "completed":
            _out(_result_of(body))
            return 0
        if status in TERMINAL_FAILURES:
            raise Failed(f"action {status}: {_failure_of(body, status)}")
    raise Failed("gave up waiting for the approval")


# --- info ---------------------------------------------------------------------------------------------


def info(_: argparse.Namespace) -> int:
    layout = Layout.from_env()
    meta: dict[str, Any] = {}
    exposed = None
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(layout.metadata_json.read_text())
    with contextlib.suppress(OSError, ValueError, AttributeError):
        exposed = json.loads(layout.services_json.read_text()).get("exposed_port")
    _out(
        {
            "session_id": os.environ.get("PROLIFERATE_SESSION_ID") or meta.get("session_id"),
            "sandbox_id": os.environ.get("PROLIFERATE_SANDBOX_ID") or meta.get("sandbox_id"),
            "repo_dir": meta.get("repo_dir") or os.environ.get("WORKSPACE_DIR") or str(layout.workspace),
            "exposed_port": exposed,
            "contract_version": int(os.environ.get("PROLIFERATE_CONTRACT_VERSION") or 1),
        }
    )
    return 0


# --- argument parsing ---------------------------------------------------------------------------------


def _positive_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise Usage(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="proliferate", description="Services, actions and info inside a Proliferate sandbox."
    )
    top = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    services = top.add_parser("services", help="long-running processes and the preview port")
    s = services.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s.add_parser("list").set_defaults(func=services_list)
    start = s.add_parser("start")
    start.add_argument("--name", required=True)
    start.add_argument("--command", required=True)
    start.add_argument("--cwd")
    start.set_defaults(func=services_start)
    for name, func in (("stop", services_stop), ("restart", services_restart)):
        p = s.add_parser(name)
        p.add_argument("--name", required=True)
        p.set_defaults(func=func)
    expose = s.add_parser("expose")
    expose.add_argument("--port", required=True, type=_positive_port)
    expose.set_defaults(func=services_expose)
    logs = s.add_parser("logs")
    logs.add_argument("--name", required=True)
    logs.add_argument("--follow", action="store_true")
    logs.set_defaults(func=services_logs)

    actions = top.add_parser("actions", help="external services through the platform's actions")
    a = actions.add_subparsers(dest="command", required=True, parser_class=_Parser)
    a.add_parser("list").set_defaults(func=actions_list)
    guide = a.add_parser("guide")
    guide.add_argument("--source", "--integration", dest="source", required=True)
    guide.set_defaults(func=actions_guide)
    run = a.add_parser("run")
    run.add_argument("--source", "--integration", dest="source", required=True)
    run.add_argument("--action", required=True)
    run.add_argument("--params")
    run.set_defaults(func=actions_run)

    top.add_parser("info", help="this sandbox's session, repo dir and preview port").set_defaults(func=info)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        return code
    except Usage as exc:
        _err(str(exc))
        return 2
    except Failed as exc:
        _err(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
