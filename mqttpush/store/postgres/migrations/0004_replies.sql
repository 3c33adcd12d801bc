-- The replies a pool's copies share to answer a repeated request once between them:
-- a claim (the copy running the request, until when: the database server's clock) and,
-- once it ran, its reply. pos is age order, for pruning the oldest first.

CREATE TABLE mqttpush_replies (
    key           text PRIMARY KEY,
    pos           bigint GENERATED ALWAYS AS IDENTITY,
    owner         text NOT NULL,
    claim_expires timestamptz NOT NULL,
    reply         bytea,
    size          integer NOT NULL
);
CREATE INDEX mqttpush_replies_by_age ON mqttpush_replies (pos);
