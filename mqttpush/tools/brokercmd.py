"""``mqttpush dev-broker``: mosquitto in the foreground with the repository config.

Kept apart from devbroker.py: this command uses the secure profile's tools, which use
devbroker.py themselves.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mqttpush.tools.devbroker import mosquitto_command, prepare_data_dir, render_config

if TYPE_CHECKING:
    import argparse

__all__ = ["dev_broker_command"]


def dev_broker_command(args: argparse.Namespace) -> int:
    """``mqttpush dev-broker``: become mosquitto with the repository config (never returns)."""
    args.run_dir.mkdir(parents=True, exist_ok=True)
    conf = args.run_dir / "mosquitto.conf"
    data = prepare_data_dir(args.run_dir / "data")
    if args.secure_dir is not None:
        from mqttpush.tools.security.broker import check_reachable, render_secure_config  # noqa: PLC0415

        check_reachable(args.secure_dir)

        text = render_secure_config(
            args.config.read_text(),
            port=args.port,
            bind=args.bind,
            secure_dir=args.secure_dir,
            data_dir=data,
        )
    else:
        text = render_config(
            args.config.read_text(), port=args.port, bind=args.bind, data_dir=data,
            ws_port=args.ws_port,
        )  # fmt: skip
    conf.write_text(text)
    command = mosquitto_command(conf)
    os.execv(command[0], command)  # noqa: S606 - replace this process: its pid is the broker's
