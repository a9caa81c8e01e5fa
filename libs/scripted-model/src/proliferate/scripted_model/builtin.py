"""Built-in responders: answers computed from the request when no scripted turn matches.

`dev` is what `make dev` runs without a vendor key: it greets, echoes, and runs a shell
command with the agent's `bash` tool when asked (`run ls -la`), then reports its output.
`echo` answers with the last user message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from proliferate.scripted_model.script import ScriptedRequest, ToolCall, Turn

Responder = Callable[[ScriptedRequest], Turn]

_RUN = re.compile(r"^\s*(?:run|\$)\s+(?P<command>.+)$", re.IGNORECASE | re.DOTALL)

DEV_GREETING = (
    "Hello from the scripted model. No LLM vendor key is configured, so this Proliferate "
    "runs offline and I answer from a script. You said: {last_user}\n\n"
    "Ask me to `run <command>` (for example `run ls -la`) and I will run it with the bash tool."
)


def dev(request: ScriptedRequest) -> Turn:
    if not request.has_tools:
        # Side requests (session titles, summaries) get a short plain answer.
        words = request.last_user_text.split()[:6]
        return Turn(text=" ".join(words) or "Scripted session")
    if request.last_tool_result is not None:
        return Turn(text="The command finished. Its output:\n\n```\n{last_tool_result}\n```")
    command = _RUN.match(request.last_user_text)
    if command and "bash" in request.tool_names:
        arguments = {"command": command.group("command").strip(), "description": "Run the requested command"}
        return Turn(tool_calls=[ToolCall(name="bash", arguments=arguments)])
    return Turn(text=DEV_GREETING)


def echo(request: ScriptedRequest) -> Turn:
    return Turn(text=request.last_user_text or "(nothing to echo)")


BUILTINS: dict[str, Responder] = {"dev": dev, "echo": echo}
