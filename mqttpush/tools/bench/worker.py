"""Benchmark workers start here: ``python -m mqttpush.tools.bench.worker ROLE ARGS``.

Roles are listed in ``ROLES`` of :mod:`.agents` (mqttpush's side) and of each
``raw_{client}`` module (the baselines, :mod:`.rawkit`); what they share is in :mod:`.harness`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["main"]


def _role(name: str) -> Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]:
    # Only the side measured is imported: a raw role loads its own client library only,
    # never mqttpush's agents (raw-native loads mqttpush's transport alone).
    if name.startswith("raw-"):
        client = name.split("-")[1]
        raw = importlib.import_module(f"mqttpush.tools.bench.raw_{client}")
        roles: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]]
        roles = raw.ROLES
        return roles[name]
    from mqttpush.tools.bench import agents  # noqa: PLC0415

    return agents.ROLES[name]


def main() -> None:
    """Run the role named on the command line and print its result."""
    role, args = sys.argv[1], json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(_role(role)(args))
    sys.stdout.write(f"RESULT {json.dumps(result)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
