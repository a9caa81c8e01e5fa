"""The models file: shipped routes all priced, refusals that stop startup (§10.18)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from proliferate.llm_proxy.bootstrap import DEFINITION
from proliferate.llm_proxy.model_route.catalog import Dialect, Usage
from proliferate.llm_proxy.model_route.errors import ModelsFileError
from proliferate.llm_proxy.model_route.loader import SHIPPED_MODELS_FILE, load_catalog
from proliferate.llm_proxy.vendor import model_cost
from proliferate.scripted_model import ScriptedModel

from .conftest import proxy_env


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Any:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return load_catalog(path, env or {}, model_cost())


def test_the_shipped_file_prices_every_route_and_resolves_opencode_ids() -> None:
    catalog = load_catalog(SHIPPED_MODELS_FILE, {"ANTHROPIC_API_KEY": "sk-ant-x"}, model_cost())
    assert all(route.price.input > 0 and route.price.output > 0 for route in catalog.routes.values())
    sonnet = catalog.resolve("claude-sonnet-4-6")
    assert sonnet is not None and sonnet.name == "anthropic/claude-sonnet-4-6"
    assert sonnet.available and sonnet.dialect is Dialect.ANTHROPIC
    assert (
        catalog.resolve("anthropic/claude-sonnet-4-5").upstream_model
        == "anthropic/claude-sonnet-4-5-20250929"
    )  # type: ignore[union-attr]
    for opencode_id in (
        "gpt-5.2",
        "deepseek-v3",
        "deepseek-r1",
        "grok-4.1",
        "grok-4.1-fast",
        "codestral",
        "gemini-3-pro-preview",
    ):
        route = catalog.resolve(opencode_id)
        assert route is not None and route.name == f"litellm/{opencode_id}"
        assert not route.available  # no vendor key in this environment
    assert catalog.resolve("litellm/deepseek-v3").upstream_model == "deepseek/deepseek-chat"  # type: ignore[union-attr]
    assert catalog.policy.num_retries == 2 and catalog.policy.timeout_s == 300
    # litellm's price table: Sonnet 4.6 at $3 / $15 per million tokens.
    assert sonnet.price.cost_micros(Usage(prompt_tokens=1_000_000)) == 3_000_000
    assert sonnet.price.output == Decimal("0.000015")


def test_a_route_without_a_price_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="no price for openai/unknown-model"):
        _load(tmp_path, "model_list:\n  - model_name: x\n    litellm_params: {model: openai/unknown-model}\n")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model_list: [", "models file"),
        ("nothing: here\n", "model_list"),
        ("model_list:\n  - litellm_params: {model: openai/gpt-5.2}\n", "model_name"),
        ("model_list:\n  - model_name: x\n    litellm_params: {model: gpt-5.2}\n", "<provider>/<model>"),
        (
            "model_list:\n  - model_name: a\n    aliases: [b]\n    litellm_params: {model: openai/gpt-5.2}\n"
            "  - model_name: b\n    litellm_params: {model: openai/gpt-5.2}\n",
            "is used by",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-5.2}\n"
            "router_settings: {fallbacks: [{a: [nowhere]}]}\n",
            "unknown model 'nowhere'",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
            "    model_info: {input_cost_per_token: -1, output_cost_per_token: 1}\n",
            "negative",
        ),
    ],
)
def test_invalid_models_files(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ModelsFileError, match=problem):
        _load(tmp_path, text)


def test_an_unset_vendor_key_leaves_the_route_unavailable(tmp_path: Path) -> None:
    text = (
        "model_list:\n  - model_name: a\n"
        "    litellm_params: {model: openai/gpt-5.2, api_key: os.environ/NOT_SET_ANYWHERE}\n"
    )
    catalog = _load(tmp_path, text)
    assert not catalog.routes["a"].available
    assert _load(tmp_path, text, {"NOT_SET_ANYWHERE": "sk-x"}).routes["a"].available


async def test_a_route_without_a_price_prevents_startup(
    service_runner: Any, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    path = tmp_path / "unpriced.yaml"
    path.write_text("model_list:\n  - model_name: x\n    litellm_params: {model: openai/no-price-anywhere}\n")
    with pytest.raises(ModelsFileError):
        await service_runner(DEFINITION, **proxy_env(path, 0))
