"""Read the models file (litellm `model_list` form) into a `ModelCatalog`, or refuse.

    model_list:
      - model_name: anthropic/claude-sonnet-4-6      # public name
        aliases: [claude-sonnet-4-6]                  # extra accepted names
        litellm_params:
          model: anthropic/claude-sonnet-4-6          # <provider>/<vendor model id>
          api_key: os.environ/ANTHROPIC_API_KEY
          api_base: https://api.anthropic.com         # optional
        model_info:                                   # optional price override (USD per token)
          input_cost_per_token: 0.000003
          output_cost_per_token: 0.000015
    router_settings: {fallbacks: [{a: [b]}], num_retries: 2, retry_after: 1, timeout: 300}
    litellm_settings: {drop_params: true}

A route's `passthrough: false` forces the litellm path even where dialects match.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from proliferate.llm_proxy.model_route.catalog import ModelCatalog, Price, RetryPolicy, Route
from proliferate.llm_proxy.model_route.errors import ModelsFileError

SHIPPED_MODELS_FILE = Path(__file__).with_name("models.yaml")
ENV_PREFIX = "os.environ/"


def load_catalog(path: Path, env: Mapping[str, str], model_cost: Mapping[str, Any]) -> ModelCatalog:
    """`env` resolves `os.environ/NAME`; `model_cost` is litellm's price table."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelsFileError(f"models file {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("model_list"), list):
        raise ModelsFileError(f"models file {path}: expected a mapping with a `model_list` list")
    routes = [_route(entry, index, env, model_cost) for index, entry in enumerate(document["model_list"])]
    _check_unique(routes)
    router = document.get("router_settings") or {}
    if not isinstance(router, dict):
        raise ModelsFileError("router_settings must be a mapping")
    catalog = ModelCatalog(routes, _fallbacks(router.get("fallbacks") or []), _policy(router))
    for source, targets in catalog.fallbacks.items():
        for name in (source, *targets):
            if catalog.resolve(name) is None:
                raise ModelsFileError(f"fallback names an unknown model {name!r}")
    return catalog


def _route(entry: Any, index: int, env: Mapping[str, str], model_cost: Mapping[str, Any]) -> Route:
    where = f"model_list[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
        raise ModelsFileError(f"{where}: needs a `model_name`")
    name = entry["model_name"]
    params = entry.get("litellm_params")
    if not isinstance(params, dict) or not isinstance(params.get("model"), str) or "/" not in params["model"]:
        raise ModelsFileError(f"{name}: litellm_params.model must be `<provider>/<model>`")
    aliases = entry.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ModelsFileError(f"{name}: aliases must be a list of names")
    upstream = params["model"]
    provider, model_id = upstream.split("/", 1)
    api_key, api_key_env = _resolve_key(params.get("api_key"), env)
    extra = {k: v for k, v in params.items() if k not in ("model", "api_key", "api_base")}
    return Route(
        name=name,
        aliases=tuple(aliases),
        upstream_model=upstream,
        provider=provider,
        model_id=model_id,
        api_base=params.get("api_base"),
        api_key=api_key,
        api_key_env=api_key_env,
        price=_price(name, upstream, model_id, entry.get("model_info") or {}, model_cost),
        passthrough=bool(entry.get("passthrough", True)),
        litellm_params=extra,
    )


def _resolve_key(value: Any, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, str):
        raise ModelsFileError("api_key must be a string")
    if value.startswith(ENV_PREFIX):
        variable = value[len(ENV_PREFIX) :]
        return (env.get(variable) or None), variable
    # A literal key in the file (dev and tests only: vendor keys belong in the environment).
    return value, None


_PRICE_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
}


def _price(name: str, upstream: str, model_id: str, info: Any, model_cost: Mapping[str, Any]) -> Price:
    if not isinstance(info, dict):
        raise ModelsFileError(f"{name}: model_info must be a mapping")
    known = model_cost.get(upstream) or model_cost.get(model_id) or {}
    values: dict[str, Decimal] = {}
    for field, key in _PRICE_FIELDS.items():
        raw = info.get(key, known.get(key))
        if raw is None and field in ("cache_read", "cache_write"):
            raw = values["input"]  # no cache price: cached tokens cost what input costs
        if raw is None:
            raise ModelsFileError(
                f"{name}: no price for {upstream} in litellm's cost map; set model_info.{key}"
            )
        try:
            values[field] = Decimal(str(raw))
        except ArithmeticError:
            raise ModelsFileError(f"{name}: model_info.{key} is not a number") from None
        if values[field] < 0:
            raise ModelsFileError(f"{name}: model_info.{key} is negative")
    return Price(**values)


def _check_unique(routes: list[Route]) -> None:
    seen: dict[str, str] = {}
    for route in routes:
        for name in (route.name, *route.aliases):
            if name in seen:
                raise ModelsFileError(f"model name {name!r} is used by {seen[name]!r} and {route.name!r}")
            seen[name] = route.name


def _fallbacks(raw: Any) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    if not isinstance(raw, list):
        raise ModelsFileError("router_settings.fallbacks must be a list of {model: [fallbacks]}")
    for item in raw:
        if not isinstance(item, dict):
            raise ModelsFileError("router_settings.fallbacks must be a list of {model: [fallbacks]}")
        for source, targets in item.items():
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise ModelsFileError(f"fallbacks of {source!r} must be a list of names")
            out[str(source)] = tuple(targets)
    return out


def _policy(router: Mapping[str, Any]) -> RetryPolicy:
    try:
        return RetryPolicy(
            num_retries=int(router.get("num_retries", 2)),
            retry_after_s=float(router.get("retry_after", 1)),
            timeout_s=float(router.get("timeout", 300)),
            connect_timeout_s=float(router.get("connect_timeout", 10)),
        )
    except (TypeError, ValueError):
        raise ModelsFileError(
            "router_settings: num_retries, retry_after and timeout must be numbers"
        ) from None
