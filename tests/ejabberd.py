"""A real two-node MQTT 5 broker cluster for the tests: :mod:`mqttpush.tools.ejabberd`.

The benchmarks start the same cluster (``mqttpush bench --only cluster-failover``).
Without ejabberd the tests fail and say how to install it; they are never skipped.
"""

from __future__ import annotations

from mqttpush.tools.ejabberd import PASSWORD, USERNAME, EjabberdCluster, EjabberdNode

__all__ = ["PASSWORD", "USERNAME", "EjabberdCluster", "EjabberdNode"]
