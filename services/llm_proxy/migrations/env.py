from proliferate.kit.db import runtime_metadata
from proliferate.kit.migrations import run_migrations
from proliferate.llm_proxy.models import Base

run_migrations([Base.metadata, runtime_metadata])
