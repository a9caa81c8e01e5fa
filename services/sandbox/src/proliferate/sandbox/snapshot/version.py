"""The base snapshot version key (§5.5 step 1)."""

from __future__ import annotations

import hashlib
import importlib.metadata

from proliferate.agent_contract import OPENCODE_VERSION, ManifestInput, base_layer_digest, build_manifest


def _sandbox_mcp_version() -> str:
    try:
        return importlib.metadata.version("proliferate-sandbox-mcp")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def contract_base_digest() -> str:
    # The base layer does not depend on the session inputs: any manifest carries the same one.
    manifest = build_manifest(
        ManifestInput(
            mode="coding",
            home_dir="/home/user",
            repo_dir="/home/user/workspace",
            prompt="",
            llm_base_url="http://x/v1",
        )
    )
    return base_layer_digest(manifest)


def version_key(provider: str, image_version: str) -> str:
    parts = [contract_base_digest(), _sandbox_mcp_version(), image_version, OPENCODE_VERSION, provider]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
