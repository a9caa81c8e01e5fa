"""pytest fixtures for the scripted model (loaded by the `pytest11` entry point).

async def test_agent(scripted_model: ScriptedModel) -> None:
    scripted_model.script(Turn(text="hi"))
    ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from proliferate.scripted_model.server import ScriptedModel


@pytest_asyncio.fixture
async def scripted_model() -> AsyncIterator[ScriptedModel]:
    """A fresh scripted model server on a free port, stopped after the test."""
    async with ScriptedModel() as model:
        yield model
