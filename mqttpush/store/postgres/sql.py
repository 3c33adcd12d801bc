"""The statements of the PostgreSQL task store (schema: ``migrations/*.sql``).

Parameters are named (``%(name)s``). Lease times come from the server's clock, ``now()``,
so processes on hosts whose clocks disagree still agree on who owns what.
Text ordered for the caller (endpoint addresses) is ordered ``COLLATE "C"``: code point
order, as the other stores order it, whatever the database's collation.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE_LEASE",
    "CREATE_TASK",
    "DELIVERIES",
    "ENDPOINTS",
    "GET_LEASE",
    "GET_TASK",
    "PRUNE_TASKS",
    "RELEASE_LEASES",
    "RENEW_LEASES",
    "RESERVE_SEQ",
    "SAVE_DELIVERY",
    "SAVE_ENDPOINT",
    "SAVE_TASK",
    "SUMMARY",
    "TAKE_OVER",
    "UNFINISHED",
]

_TASK = "task_id, state, params, result, error, created_at, updated_at, pushed"
_TASK_VALUES = (
    "%(task_id)s, %(state)s, %(params)s, %(result)s, %(error)s, "
    "%(created_at)s, %(updated_at)s, %(pushed)s"
)
_UNFINISHED = "state <> ALL(%(terminal)s)"
_EXPIRES = "now() + make_interval(secs => %(ttl)s)"

# A replaced task keeps its place (pos) and its lease; pushed never goes down.
SAVE_TASK = f"""
INSERT INTO mqttpush_tasks AS t ({_TASK}) VALUES ({_TASK_VALUES})
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state, params = excluded.params, result = excluded.result,
    error = excluded.error, created_at = excluded.created_at,
    updated_at = excluded.updated_at, pushed = GREATEST(t.pushed, excluded.pushed)
"""  # noqa: S608 - constants only
GET_TASK = f"SELECT {_TASK} FROM mqttpush_tasks WHERE task_id = %(task_id)s"  # noqa: S608
UNFINISHED = f"""
SELECT {_TASK} FROM mqttpush_tasks WHERE {_UNFINISHED} ORDER BY created_at, pos
"""  # noqa: S608 - constants only
SAVE_ENDPOINT = """
INSERT INTO mqttpush_endpoints (task_id, address, token, options)
VALUES (%(task_id)s, %(address)s, %(token)s, %(options)s)
ON CONFLICT (task_id, address) DO UPDATE SET token = excluded.token, options = excluded.options
"""
ENDPOINTS = """
SELECT task_id, address, token, options FROM mqttpush_endpoints WHERE task_id = %(task_id)s
ORDER BY pos
"""
SAVE_DELIVERY = """
INSERT INTO mqttpush_deliveries
    (notification_id, endpoint, task_id, seq, state, attempts, detail, updated_at)
VALUES (%(notification_id)s, %(endpoint)s, %(task_id)s, %(seq)s, %(state)s, %(attempts)s,
    %(detail)s, %(updated_at)s)
ON CONFLICT (notification_id, endpoint) DO UPDATE SET
    task_id = excluded.task_id, seq = excluded.seq, state = excluded.state,
    attempts = excluded.attempts, detail = excluded.detail, updated_at = excluded.updated_at
"""
DELIVERIES = """
SELECT notification_id, task_id, seq, endpoint, state, attempts, detail, updated_at
FROM mqttpush_deliveries WHERE task_id = %(task_id)s ORDER BY seq, endpoint COLLATE "C"
"""
SUMMARY = """
SELECT state, count(*) AS n FROM mqttpush_deliveries WHERE task_id = %(task_id)s GROUP BY state
"""
PRUNE_TASKS = """
DELETE FROM mqttpush_tasks WHERE task_id IN (
    SELECT task_id FROM mqttpush_tasks WHERE state = ANY(%(terminal)s)
    ORDER BY updated_at DESC, pos DESC OFFSET %(keep)s
    FOR UPDATE
)
RETURNING task_id
"""

CREATE_TASK = f"""
INSERT INTO mqttpush_tasks ({_TASK}, owner, lease_expires)
VALUES ({_TASK_VALUES}, %(owner)s, {_EXPIRES})
ON CONFLICT (task_id) DO NOTHING
RETURNING lease_expires
"""  # noqa: S608 - constants only
ACQUIRE_LEASE = f"""
UPDATE mqttpush_tasks SET owner = %(owner)s, lease_expires = {_EXPIRES}
WHERE task_id = %(task_id)s AND {_UNFINISHED}
    AND (owner IS NULL OR owner = %(owner)s OR lease_expires <= now())
RETURNING lease_expires
"""  # noqa: S608 - constants only
RENEW_LEASES = f"""
UPDATE mqttpush_tasks SET lease_expires = {_EXPIRES}
WHERE owner = %(owner)s AND {_UNFINISHED}
RETURNING task_id
"""  # noqa: S608 - constants only
RELEASE_LEASES = """
UPDATE mqttpush_tasks SET owner = NULL, lease_expires = NULL
WHERE owner = %(owner)s AND (%(task_ids)s::text[] IS NULL OR task_id = ANY(%(task_ids)s))
"""
GET_LEASE = """
SELECT owner, lease_expires FROM mqttpush_tasks
WHERE task_id = %(task_id)s AND owner IS NOT NULL
"""
# SKIP LOCKED: racing claimers each take rows the others have not locked, and a row
# claimed meanwhile fails the re-checked WHERE clause; so each task goes to one of them.
TAKE_OVER = f"""
WITH claimable AS (
    SELECT task_id, owner FROM mqttpush_tasks
    WHERE {_UNFINISHED}
        AND (owner IS NULL OR (lease_expires <= now() AND owner <> %(owner)s))
    ORDER BY created_at, pos
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE mqttpush_tasks AS t SET owner = %(owner)s, lease_expires = {_EXPIRES}
FROM claimable AS c WHERE t.task_id = c.task_id
RETURNING t.task_id, t.state, t.params, t.result, t.error, t.created_at, t.updated_at,
    t.pushed, t.pos, t.lease_expires, c.owner AS previous_owner
"""  # noqa: S608 - constants only
RESERVE_SEQ = """
UPDATE mqttpush_tasks SET pushed = pushed + %(count)s WHERE task_id = %(task_id)s
RETURNING pushed
"""
