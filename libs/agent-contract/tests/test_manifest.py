from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from proliferate.agent_contract import (
    AgentConfig,
    CapabilityManifest,
    ManifestFile,
    base_layer_digest,
    build_manifest,
    render_run_task_prompt,
    render_setup_initial_prompt,
    stale_managed_paths,
)
from proliferate.agent_contract.tools import TOOLS
from proliferate.kit.logs import redact

from .conftest import RUN_ID, SECRET_SHAPES, check_golden, manifest_input

MODES = ["setup", "coding", "automation", "scratch"]
DIGEST_SCRIPT = """
import sys
sys.path[:0] = {path!r}
from conftest import manifest_input
from proliferate.agent_contract import build_manifest
m = build_manifest(manifest_input("automation"))
print(m.digest)
print(b"".join(f.path.encode() + f.content for f in m.files).hex())
"""


def listing(m: CapabilityManifest) -> str:
    import hashlib

    lines = [f"{f.path} {f.layer} {f.mode_bits:o} {hashlib.sha256(f.content).hexdigest()}" for f in m.files]
    lines += [f"env {name}" for name in m.env_names]
    lines += [
        f"process {p.name} {' '.join(p.argv)} restart={p.restart} ready={p.ready_http_path}"
        for p in m.processes
    ]
    return "\n".join([*lines, f"digest {m.digest}"]) + "\n"


class TestDeterminism:
    def test_same_inputs_same_bytes_and_digest(self) -> None:
        a, b = build_manifest(manifest_input("automation")), build_manifest(manifest_input("automation"))
        assert a == b and a.digest == b.digest

    def test_same_digest_in_two_processes(self) -> None:
        here = os.path.dirname(__file__)
        script = DIGEST_SCRIPT.format(path=[here])
        outputs = []
        for seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            done = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
            )
            outputs.append(done.stdout)
        local = build_manifest(manifest_input("automation"))
        assert outputs[0] == outputs[1]
        assert outputs[0].splitlines()[0] == local.digest

    def test_files_in_path_order_with_fixed_encodings(self) -> None:
        m = build_manifest(manifest_input("setup"))
        assert [f.path for f in m.files] == sorted(f.path for f in m.files)
        for f in m.files:
            text = f.content.decode("utf-8")
            assert "\r" not in text and text.endswith("\n")
            if f.path.endswith(".json") and "trigger-context" not in f.path:
                assert (
                    json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text
                )

    def test_changing_only_the_model_changes_only_opencode_json(self) -> None:
        a = build_manifest(manifest_input("coding"))
        b = build_manifest(manifest_input("coding", agent=AgentConfig(model_id="gpt-5.2")))
        changed = {fa.path for fa, fb in zip(a.files, b.files, strict=True) if fa != fb}
        # manifest.json changes with it only because it records the new digest.
        assert changed == {".config/opencode/opencode.json", ".proliferate/manifest.json"}
        assert a.digest != b.digest
        assert json.loads(b.file(".config/opencode/opencode.json").content)["model"] == "litellm/gpt-5.2"  # type: ignore[union-attr]

    @pytest.mark.parametrize("mode", MODES)
    def test_golden(self, mode: str) -> None:
        check_golden(f"manifest-{mode}.txt", listing(build_manifest(manifest_input(mode))))  # type: ignore[arg-type]


class TestContent:
    @pytest.mark.parametrize("mode", MODES)
    def test_tool_files_are_exactly_the_modes_tools(self, mode: str) -> None:
        m = build_manifest(manifest_input(mode))  # type: ignore[arg-type]
        tools = {f.path.rsplit("/", 1)[1] for f in m.files if "/tools/" in f.path}
        expected = {
            "setup": {"verify", "save_snapshot", "save_service_commands"},
            "coding": {"verify", "save_snapshot"},
            "scratch": {"verify", "save_snapshot"},
            "automation": {"verify", "save_snapshot", "automation_complete"},
        }[mode]
        assert tools == {f"{t}.ts" for t in expected} | {f"{t}.txt" for t in expected}

    def test_manifest_json_lists_managed_paths_and_digest(self) -> None:
        m = build_manifest(manifest_input("automation"))
        index = json.loads(m.file(".proliferate/manifest.json").content)  # type: ignore[union-attr]
        assert index == {
            "contract_version": 1,
            "digest": m.digest,
            "managed_paths": [f.path for f in m.files],
        }

    def test_trigger_context_is_private_and_verbatim(self) -> None:
        m = build_manifest(manifest_input("automation"))
        f = m.file(".proliferate/trigger-context.json")
        assert f is not None and f.mode_bits == 0o600 and f.content == b'{"event": "issue.created"}'
        assert b"issue.created" not in m.file(".config/opencode/proliferate/instructions.md").content  # type: ignore[union-attr]

    def test_layers(self) -> None:
        m = build_manifest(manifest_input("coding"))
        assert {f.path for f in m.files if f.layer == "base"} == {
            ".config/opencode/package.json",
            ".config/opencode/plugin/proliferate.mjs",
        }

    def test_agent_process(self) -> None:
        (agent,) = build_manifest(manifest_input("coding", ports=manifest_input("coding").ports)).processes
        assert agent.argv[:2] == ("opencode", "serve") and "--port" in agent.argv
        assert agent.restart == "always" and agent.ready_http_path == "/session"
        assert agent.env["OPENCODE_DISABLE_MODELS_FETCH"] == "true"

    def test_stale_managed_paths(self) -> None:
        setup = build_manifest(manifest_input("setup"))
        coding = build_manifest(manifest_input("coding"))
        previous = setup.file(".proliferate/manifest.json").content  # type: ignore[union-attr]
        assert stale_managed_paths(previous, coding) == [
            ".config/opencode/tools/save_service_commands.ts",
            ".config/opencode/tools/save_service_commands.txt",
        ]
        hostile = json.dumps({"managed_paths": ["/etc/passwd", "../x", "a/../../b", 3]}).encode()
        assert stale_managed_paths(hostile, coding) == []
        assert stale_managed_paths(b"not json", coding) == []


class TestBaseLayerDigest:
    def test_plugin_text_changes_it(self) -> None:
        m = build_manifest(manifest_input("coding"))
        files = tuple(
            ManifestFile(f.path, f.mode_bits, f.layer, f.content + b"// v2\n")
            if f.path.endswith(".mjs")
            else f
            for f in m.files
        )
        changed = CapabilityManifest(m.contract_version, m.mode, files, m.env_names, m.processes, m.digest)
        assert base_layer_digest(changed) != base_layer_digest(m)

    def test_prompt_mode_and_model_do_not(self) -> None:
        a = build_manifest(manifest_input("coding"))
        b = build_manifest(
            manifest_input("setup", prompt="another prompt", agent=AgentConfig(model_id="gpt-5.2"))
        )
        assert base_layer_digest(a) == base_layer_digest(b)


class TestNoSecrets:
    @pytest.mark.parametrize("mode", MODES)
    def test_no_file_matches_a_secret_shape(self, mode: str) -> None:
        m = build_manifest(manifest_input(mode))  # type: ignore[arg-type]
        texts = {f.path: f.content.decode() for f in m.files}
        texts["setup-initial"] = render_setup_initial_prompt()
        texts["run-task"] = render_run_task_prompt(RUN_ID, "Fix it.")
        texts.update({f"description:{t.name}": t.description_md for t in TOOLS})
        for name, text in texts.items():
            assert redact(text) == text, name
            for shape in SECRET_SHAPES:
                assert not shape.search(text), (name, shape.pattern)

    def test_opencode_json_references_the_key_and_holds_none(self) -> None:
        m = build_manifest(manifest_input("coding"))
        text = m.file(".config/opencode/opencode.json").content.decode()  # type: ignore[union-attr]
        config = json.loads(text)
        assert text.count("{env:ANTHROPIC_API_KEY}") == 2
        assert config["provider"]["anthropic"]["options"]["apiKey"] == "{env:ANTHROPIC_API_KEY}"
        assert config["provider"]["litellm"]["options"]["apiKey"] == "{env:ANTHROPIC_API_KEY}"
        assert "{env:" not in text.replace("{env:ANTHROPIC_API_KEY}", "")
