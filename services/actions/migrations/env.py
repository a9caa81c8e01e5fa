from proliferate.actions.models import Base
from proliferate.kit.db import runtime_metadata
from proliferate.kit.migrations import run_migrations

run_migrations([Base.metadata, runtime_metadata])
