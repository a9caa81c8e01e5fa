"""Generated OpenCode tool modules: `<tool>.ts` (wrapper) and `<tool>.txt` (guidance), §2.4 and §4.2.

The wrapper's argument schema is produced from the tool's `msgspec` args struct (through its JSON
Schema) as `tool.schema` (zod) builders, so OpenCode, the gateway and the catalog agree. The callback
runtime below is the same text in every module: a UUIDv4 `tool_call_id` made once per execution
(`automation_complete`: its `completion_id`), an identical body on every attempt, 120 s per attempt,
up to 5 retries (0.5/1/2/4/8 s) on transport failures, timeouts, 502/503/504 and 429 with a
`Retry-After` of at most 30 s; never on other 4xx. It never throws: failures become `ERROR[code]: …`.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from proliferate.agent_contract.tools import CALLBACK_BODY_MAX_BYTES
from proliferate.agent_contract.types import CONTRACT_VERSION, ToolSpec

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

CALLBACK_RUNTIME_TS = """\
const CONTRACT_VERSION = "%(contract_version)d"
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000]
const ATTEMPT_TIMEOUT_MS = 120_000
const MAX_RETRY_AFTER_MS = 30_000
const MAX_BODY_BYTES = %(max_body)d

type Outcome = { text: string } | { retry: string; waitMs?: number }

function errorText(code: string, message: string): string {
  return `ERROR[${code}]: ${message}`
}

function retryAfterMs(value: string | null): number | null {
  if (value === null || value.trim() === "") return null
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now())
}

function sleep(ms: number, abort?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    abort?.addEventListener("abort", () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

async function readOutcome(res: Response): Promise<Outcome> {
  const text = await res.text()
  let body: any = null
  try { body = JSON.parse(text) } catch { body = null }
  if (res.status === 200) {
    if (body !== null && typeof body === "object" && typeof body.success === "boolean") {
      if (body.success) return { text: String(body.result ?? "") }
      const err = body.error ?? {}
      return { text: errorText(String(err.code ?? "tool_failed"), String(err.message ?? body.result ?? "")) }
    }
    return { text: errorText("invalid_response", "the gateway answered without a tool result") }
  }
  const err = body !== null && typeof body === "object" && body.error ? body.error : {}
  const code = String(err.code ?? `http_${res.status}`)
  const failure = errorText(code, String(err.message ?? text.slice(0, 500)))
  if (res.status === 502 || res.status === 503 || res.status === 504) return { retry: failure }
  if (res.status === 429) {
    const wait = retryAfterMs(res.headers.get("retry-after"))
    if (wait !== null && wait <= MAX_RETRY_AFTER_MS) return { retry: failure, waitMs: wait }
  }
  return { text: failure }
}

async function callGateway(
  toolName: string, args: Record<string, unknown>, idArg: string | null, abort?: AbortSignal,
): Promise<string> {
  const base = process.env.PROLIFERATE_GATEWAY_URL
  const sessionId = process.env.PROLIFERATE_SESSION_ID
  const token = process.env.SANDBOX_MCP_AUTH_TOKEN
  if (!base || !sessionId || !token) {
    const names = "PROLIFERATE_GATEWAY_URL, PROLIFERATE_SESSION_ID and SANDBOX_MCP_AUTH_TOKEN"
    return errorText("misconfigured", `${names} must be set`)
  }
  const fromArg = idArg !== null ? args[idArg] : undefined
  const toolCallId = typeof fromArg === "string" && fromArg !== "" ? fromArg : crypto.randomUUID()
  const body = JSON.stringify({ tool_call_id: toolCallId, args })
  if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
    return errorText("invalid_request", `the tool call is larger than ${MAX_BODY_BYTES} bytes`)
  }
  const session = encodeURIComponent(sessionId)
  const url = `${base.replace(/\\/+$/, "")}/v1/sessions/${session}/tools/${encodeURIComponent(toolName)}`
  const headers = {
    "Authorization": `Bearer ${token}`,
    "Content-Type": "application/json",
    "X-Proliferate-Contract": CONTRACT_VERSION,
  }
  let last = errorText("unavailable", "the gateway could not be reached")
  for (let attempt = 0; ; attempt++) {
    if (abort?.aborted) return errorText("aborted", "the tool call was cancelled")
    let outcome: Outcome
    try {
      const signals: AbortSignal[] = [AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]
      if (abort) signals.push(abort)
      const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.any(signals) })
      outcome = await readOutcome(res)
    } catch (err: any) {
      if (abort?.aborted) return errorText("aborted", "the tool call was cancelled")
      const timedOut = err?.name === "TimeoutError"
      const reason = timedOut ? "timed out" : String(err?.cause?.code ?? err?.message ?? err)
      outcome = { retry: errorText("unavailable", `the gateway request failed (${reason})`) }
    }
    if ("text" in outcome) return outcome.text
    last = outcome.retry
    if (attempt >= RETRY_DELAYS_MS.length) return last
    await sleep(Math.max(RETRY_DELAYS_MS[attempt], outcome.waitMs ?? 0), abort)
  }
}
"""

WRAPPER_TS = """\
// Generated by proliferate.agent_contract (contract %(contract_version)d) from the tool catalog. Do not edit:
// the next boot rewrites it. Calls the gateway (agent-contract.md §4.2) and returns the result text.
import { tool } from "@opencode-ai/plugin"

const z = tool.schema
const TOOL_NAME = %(name)s
const ID_ARG: string | null = %(id_arg)s
const DESCRIPTION = %(description)s

%(runtime)s
export default tool({
  description: DESCRIPTION,
  args: {
%(args)s
  },
  async execute(args, context) {
    return await callGateway(TOOL_NAME, args as Record<string, unknown>, ID_ARG, context?.abort)
  },
})
"""


def _js(value: Any) -> str:
    """A JavaScript literal: JSON text is a valid JS expression, keys sorted for stable bytes."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def args_json_schema(spec: ToolSpec) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments, as msgspec derives it from the args struct."""
    if spec.args is None:
        raise ValueError(f"{spec.name} has no callback arguments")
    return msgspec.json.schema(spec.args)


def _zod(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    optional = False
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        optional = len(branches) != len(schema["anyOf"])
        if len(branches) != 1:
            raise ValueError(f"unsupported union in tool args: {schema}")
        schema = {**branches[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "default")}}
    if "$ref" in schema:
        expr = _zod_object(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    elif "enum" in schema:
        expr = f"z.enum({_js(list(schema['enum']))})"
    elif schema.get("type") == "string":
        expr = "z.string()"
        if "minLength" in schema:
            expr += f".min({schema['minLength']})"
        if "maxLength" in schema:
            expr += f".max({schema['maxLength']})"
        pattern = UUID_PATTERN if schema.get("format") == "uuid" else schema.get("pattern")
        if pattern:
            expr += f".regex(new RegExp({_js(pattern)}))"
    elif schema.get("type") == "array":
        expr = f"z.array({_zod(schema['items'], defs)})"
        if "minItems" in schema:
            expr += f".min({schema['minItems']})"
        if "maxItems" in schema:
            expr += f".max({schema['maxItems']})"
    elif schema.get("type") in ("integer", "number", "boolean"):
        expr = {"integer": "z.number().int()", "number": "z.number()", "boolean": "z.boolean()"}[
            schema["type"]
        ]
    else:
        raise ValueError(f"unsupported schema in tool args: {schema}")
    if optional:
        expr += ".optional()"
    if "description" in schema:
        expr += f".describe({_js(schema['description'])})"
    return expr


def _zod_fields(obj: dict[str, Any], defs: dict[str, Any]) -> list[tuple[str, str]]:
    required = set(obj.get("required", ()))
    fields = []
    for name, prop in obj["properties"].items():
        expr = _zod(prop, defs)
        if name not in required and ".optional()" not in expr:
            expr += ".optional()"
        fields.append((name, expr))
    return fields


def _zod_object(obj: dict[str, Any], defs: dict[str, Any]) -> str:
    inner = ", ".join(f"{_js(n)}: {e}" for n, e in _zod_fields(obj, defs))
    return f"z.object({{ {inner} }}).strict()"


def render_tool_guidance(spec: ToolSpec) -> str:
    """`<tool>.txt`: the agent-visible description with the argument summary."""
    schema = args_json_schema(spec)
    top = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    required = set(top.get("required", ()))
    lines = [spec.description_md.strip(), "", "Arguments:"]
    for name, prop in top["properties"].items():
        desc = prop.get("description") or next(
            (b.get("description") for b in prop.get("anyOf", ()) if b.get("description")), ""
        )
        lines.append(f"- `{name}`{'' if name in required else ' (optional)'}: {desc}")
    return "\n".join(lines) + "\n"


def render_tool_module(spec: ToolSpec) -> str:
    """`<tool>.ts`: the OpenCode custom tool whose file name is the agent-visible tool name."""
    schema = args_json_schema(spec)
    defs = schema["$defs"]
    top = defs[schema["$ref"].rsplit("/", 1)[1]]
    args = "\n".join(f"    {_js(n)}: {e}," for n, e in _zod_fields(top, defs))
    runtime = CALLBACK_RUNTIME_TS % {
        "contract_version": CONTRACT_VERSION,
        "max_body": CALLBACK_BODY_MAX_BYTES,
    }
    return WRAPPER_TS % {
        "contract_version": CONTRACT_VERSION,
        "name": _js(spec.name),
        "id_arg": _js(spec.id_arg),
        "description": _js(render_tool_guidance(spec)),
        "runtime": runtime,
        "args": args,
    }
