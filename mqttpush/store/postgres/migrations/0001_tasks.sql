-- Tasks, push endpoints and deliveries: what a sender keeps so that a restart loses nothing.
-- pos keeps insertion order: the tie-break between equal times, and registration order.

CREATE TABLE mqttpush_tasks (
    task_id    text PRIMARY KEY,
    pos        bigint GENERATED ALWAYS AS IDENTITY,
    state      text NOT NULL,
    params     json NOT NULL,
    result     json NOT NULL,
    error      json,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    pushed     bigint NOT NULL
);
CREATE INDEX mqttpush_tasks_by_age ON mqttpush_tasks (created_at, pos);
CREATE INDEX mqttpush_tasks_by_state ON mqttpush_tasks (state);

CREATE TABLE mqttpush_endpoints (
    task_id text NOT NULL,
    address text NOT NULL,
    pos     bigint GENERATED ALWAYS AS IDENTITY,
    token   text,
    PRIMARY KEY (task_id, address)
);

CREATE TABLE mqttpush_deliveries (
    notification_id text NOT NULL,
    endpoint        text NOT NULL,
    task_id         text NOT NULL,
    seq             bigint NOT NULL,
    state           text NOT NULL,
    attempts        integer NOT NULL,
    detail          text,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (notification_id, endpoint)
);
CREATE INDEX mqttpush_deliveries_by_task ON mqttpush_deliveries (task_id, seq);
