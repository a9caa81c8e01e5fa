"""`make dev` hook: without a vendor key, every model is answered by the scripted model.

With any vendor key in the environment (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`, …) the shipped
models file is used and requests go to the vendors. Without one, a scripted model process
(`python -m proliferate.scripted_model --script dev`) is started and a dev models file routes
every shipped public name to it, so an agent session works offline. Start-up says which.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import yaml
from proliferate.devkit.launcher import DevContext, DevProcess
from proliferate.llm_proxy.model_route.loader import SHIPPED_MODELS_FILE

VENDOR_KEYS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "MISTRAL_API_KEY",
)
# The scripted model costs nothing; dev routes are priced like a mid-range model so that
# spend and billing show real-looking numbers.
DEV_PRICE = {"input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015}
DEV_KEY = "dev-scripted-model-key"


def vendor_keys_set() -> list[str]:
    return [name for name in VENDOR_KEYS if os.environ.get(name)]


def _scripted_port(ctx: DevContext) -> int:
    return ctx.port("scripted_model")


def dev_models(scripted_url: str) -> dict[str, Any]:
    """The shipped routes, each pointed at the scripted model in its own dialect."""
    shipped = yaml.safe_load(SHIPPED_MODELS_FILE.read_text())
    routes = []
    for entry in shipped["model_list"]:
        provider, model_id = entry["litellm_params"]["model"].split("/", 1)
        if provider == "anthropic":
            params = {"model": f"anthropic/{model_id}", "api_base": scripted_url, "api_key": DEV_KEY}
        else:
            params = {"model": f"openai/{model_id}", "api_base": f"{scripted_url}/v1", "api_key": DEV_KEY}
        info = {**DEV_PRICE, **(entry.get("model_info") or {})}
        routes.append({**entry, "litellm_params": params, "model_info": info})
    return {**shipped, "model_list": routes}


def dev_environment(ctx: DevContext) -> dict[str, dict[str, str]]:
    env = {"LLM_PROXY_PUBLIC_URL": f"http://127.0.0.1:{ctx.http_ports['llm_proxy']}"}
    if not vendor_keys_set():
        path = ctx.dev_dir / "llm_proxy" / "models.dev.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(dev_models(f"http://127.0.0.1:{_scripted_port(ctx)}"), sort_keys=False)
        )
        env["LLM_PROXY_MODELS_FILE"] = str(path)
    return {"llm_proxy": env}


def dev_processes(ctx: DevContext) -> list[DevProcess]:
    if vendor_keys_set():
        return []
    port = _scripted_port(ctx)
    argv = [sys.executable, "-m", "proliferate.scripted_model", "--port", str(port), "--script", "dev"]
    return [DevProcess("scripted-model", argv, ready_url=f"http://127.0.0.1:{port}/healthz")]


async def dev_after_start(ctx: DevContext) -> list[str]:
    keys = vendor_keys_set()
    llm = f"http://127.0.0.1:{ctx.http_ports['llm_proxy']}/v1"
    if keys:
        return [
            f"LLM proxy {llm}: routing to the vendors ({', '.join(keys)} set;"
            " models without a key are unavailable)"
        ]
    return [
        f"LLM proxy {llm}: no vendor key set, every model answers from the scripted model at "
        f"http://127.0.0.1:{_scripted_port(ctx)} (set ANTHROPIC_API_KEY to use Anthropic)"
    ]
