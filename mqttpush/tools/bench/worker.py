"""Benchmark workers start here: ``python -m mqttpush.tools.bench.worker ROLE ARGS``.

Roles are listed in ``ROLES`` of :mod:`.agents` (mqttpush's side) and :mod:`.raw` (the
baselines); what they share is in :mod:`.harness`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["main"]


def _role(name: str) -> Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]:
    # Only the side measured is imported: raw roles never load mqttpush's agents.
    if name.startswith("raw-"):
        from mqttpush.tools.bench import raw  # noqa: PLC0415

        return raw.ROLES[name]
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
