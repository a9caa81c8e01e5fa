"""Why a models file cannot be used: the service refuses to start, naming the problem."""

from __future__ import annotations


class ModelsFileError(Exception):
    """The models file does not parse, has duplicate names, or a route without a price."""
