"""A scripted OpenAI- and Anthropic-compatible model server that tests (and make dev) control.

    async with ScriptedModel() as model:
        model.script(Turn(tool_calls=[ToolCall(name="bash", arguments={"command": "ls"})]),
                     Turn(text="I saw: {last_tool_result}", when=Match(after_tool_result=True)))
        ... point an OpenAI client at model.openai_base_url, an Anthropic one at model.url ...
        assert model.requests[1].last_tool_result

See the package README for the wire formats, failures, the control routes and the fixtures.
"""

from proliferate.scripted_model.builtin import BUILTINS, Responder
from proliferate.scripted_model.script import (
    Match,
    Script,
    ScriptedRequest,
    ToolCall,
    Turn,
    Usage,
    agent_turns,
)
from proliferate.scripted_model.server import ScriptedModel, serve_in_thread

__all__ = [
    "BUILTINS",
    "Match",
    "Responder",
    "Script",
    "ScriptedModel",
    "ScriptedRequest",
    "ToolCall",
    "Turn",
    "Usage",
    "agent_turns",
    "serve_in_thread",
]
