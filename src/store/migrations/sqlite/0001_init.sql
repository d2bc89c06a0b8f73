-- Messages exactly as received, with their state.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    channel         TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    format          TEXT    NOT NULL,   -- hl7v2 | fhir | x12
    type            TEXT,               -- e.g. ADT^A01
    control_id      TEXT,               -- MSH-10 or equivalent
    sender          TEXT,               -- MSH-3^MSH-4 or partner
    peer            TEXT,               -- transport peer
    raw             BLOB    NOT NULL,   -- bytes as received
    state           TEXT    NOT NULL,   -- received | processed | filtered | error
    error           TEXT,
    initial_state   TEXT    NOT NULL,   -- the state it was stored in (the first history entry)
    initial_reason  TEXT,
    mapping_version TEXT,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX messages_channel_state ON messages (channel, state, id);
CREATE INDEX messages_received_at ON messages (received_at);
CREATE INDEX messages_control_id ON messages (channel, control_id, sender, received_at);

-- One row per message and destination (and reprocess generation).
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    channel         TEXT    NOT NULL,
    destination     TEXT    NOT NULL,
    generation      INTEGER NOT NULL DEFAULT 1,
    payload         BLOB,               -- NULL: send the message's raw bytes
    state           TEXT    NOT NULL,   -- queued | retrying | sent | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    response        TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX deliveries_pending ON deliveries (channel, destination, id)
    WHERE state IN ('queued', 'retrying');
CREATE INDEX deliveries_message ON deliveries (message_id);

-- Every state change of a message or delivery after it was stored, with its
-- reason (the first entry is the message row's initial_state).
CREATE TABLE message_events (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL,
    delivery_id INTEGER,
    at          INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT
);
CREATE INDEX message_events_message ON message_events (message_id, id);
