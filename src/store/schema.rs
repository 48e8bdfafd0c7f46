//! Schema migrations, in code. Append a new `M::up` for every change; never edit one that
//! has shipped.

use rusqlite_migration::{Migrations, M};

/// Every migration in order; the database's `user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7_BOUNDED_QUARANTINE,
    V8_CLASSIFIED_BY,
    V9_MAILBOX_ALARMS,
    V10_WHOLE_TEXT_SEARCH,
    V11_COUNTS,
    V12_REPORT_VOLUME,
    V13_WRITER_LOOKUPS,
    V14_FAIR_OUTBOX,
    V15_SIMILAR_AND_SELF_SERVICE,
    V16_TRIAGE,
];

/// The schema version this build writes (`PRAGMA user_version` after every migration).
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

const V1: &str = r#"
-- One row per watched mailbox: the cursor (mailbox, UIDVALIDITY, UID) and its health.
CREATE TABLE mailboxes (
    name          TEXT PRIMARY KEY,
    uidvalidity   INTEGER,
    last_uid      INTEGER NOT NULL DEFAULT 0,
    last_sync_at  TEXT,
    last_error    TEXT,
    last_error_at TEXT
) STRICT;

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tag         TEXT NOT NULL,
    subject     TEXT NOT NULL,
    status      TEXT NOT NULL,
    priority    TEXT NOT NULL,
    queue       TEXT NOT NULL,
    mailbox     TEXT NOT NULL,
    requester   TEXT,
    requester_name TEXT,
    assignee    TEXT,
    language    TEXT NOT NULL,
    flagged     TEXT,
    linked_to   INTEGER REFERENCES tickets(id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    closed_at   TEXT
) STRICT;
CREATE INDEX tickets_status ON tickets(status);

-- Both directions. message_id is unique: the same Message-ID seen twice, in one mailbox or
-- two, is one message (invariant 1).
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    ticket_id    INTEGER REFERENCES tickets(id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    message_id   TEXT NOT NULL UNIQUE,
    class        TEXT NOT NULL,
    from_addr    TEXT,
    from_name    TEXT,
    to_addrs     TEXT NOT NULL DEFAULT '[]',
    cc_addrs     TEXT NOT NULL DEFAULT '[]',
    subject      TEXT NOT NULL DEFAULT '',
    date         TEXT,
    text         TEXT NOT NULL DEFAULT '',
    in_reply_to  TEXT,
    refs         TEXT NOT NULL DEFAULT '[]',
    attachments  TEXT NOT NULL DEFAULT '[]',
    warnings     TEXT NOT NULL DEFAULT '[]',
    mailbox      TEXT,
    recorded_at  TEXT NOT NULL
) STRICT;
CREATE INDEX messages_ticket ON messages(ticket_id);

-- The RFC 5322 bytes, apart from the rows so that scans of messages stay small.
CREATE TABLE message_raw (
    message  INTEGER PRIMARY KEY REFERENCES messages(id),
    raw      BLOB NOT NULL
) STRICT;

-- Where each incoming message was seen: a re-fetch of the same UID is a no-op.
CREATE TABLE message_locations (
    mailbox     TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    message     INTEGER REFERENCES messages(id),
    PRIMARY KEY (mailbox, uidvalidity, uid)
) STRICT, WITHOUT ROWID;

CREATE TABLE participants (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    address    TEXT NOT NULL,
    role       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, address)
) STRICT, WITHOUT ROWID;

-- Append-only audit log: the triggers refuse changes.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER REFERENCES tickets(id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    old        TEXT,
    new        TEXT,
    detail     TEXT
) STRICT;
CREATE INDEX events_ticket ON events(ticket_id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message         INTEGER NOT NULL REFERENCES messages(id),
    ticket_id       INTEGER REFERENCES tickets(id),
    kind            TEXT NOT NULL,
    mail_from       TEXT NOT NULL,
    rcpt            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    response        TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    mailbox     TEXT,
    uidvalidity INTEGER,
    uid         INTEGER,
    reason      TEXT NOT NULL,
    raw         BLOB NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('held', 'released')),
    created_at  TEXT NOT NULL,
    released_at TEXT,
    released_as INTEGER REFERENCES messages(id)
) STRICT;
"#;

const V2: &str = r#"
-- Loop protection (issue 3): automatic mails queued per scope ('*' for all, or one
-- address) and minute, so that a rate check reads at most one row per minute of its window.
CREATE TABLE automatic_counts (
    scope   TEXT NOT NULL,
    minute  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (scope, minute)
) STRICT, WITHOUT ROWID;

-- Addresses that hard-bounced: nothing automatic goes to them until they write again.
CREATE TABLE undeliverable (
    address  TEXT PRIMARY KEY,
    since    TEXT NOT NULL,
    status   TEXT,
    detail   TEXT,
    ticket_id INTEGER REFERENCES tickets(id)
) STRICT, WITHOUT ROWID;
"#;

const V3: &str = r#"
-- Agents (issue 4). Who may see a message: 'customer' (the customer's own mail and what
-- we sent them), 'agents' (relays to agents), 'internal' (agents' mail as received,
-- notes). Only 'customer' messages go into the References chain of customer mail.
ALTER TABLE messages ADD COLUMN audience TEXT NOT NULL DEFAULT 'customer'
    CHECK (audience IN ('customer', 'agents', 'internal'));
-- The agent who wrote an incoming message, and whether their mail was verified.
ALTER TABLE messages ADD COLUMN agent TEXT;
ALTER TABLE messages ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN first_response_at TEXT;
ALTER TABLE tickets ADD COLUMN merged_into INTEGER REFERENCES tickets(id);

CREATE TABLE ticket_tags (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    tag       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag)
) STRICT, WITHOUT ROWID;
"#;

const V4: &str = r#"
-- Workflow (issue 5).
ALTER TABLE tickets ADD COLUMN resolved_at TEXT;
ALTER TABLE tickets ADD COLUMN csat INTEGER;

-- One row per SLA deadline of a ticket. A new instance of a deadline (the next response
-- after each customer message) replaces the row, which resets its warning and breach.
-- While the ticket is pending, the resolution deadline is paused: due_at is NULL and
-- used_secs keeps the business time already spent.
CREATE TABLE sla_deadlines (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    deadline    TEXT NOT NULL CHECK (deadline IN ('first_response', 'next_response', 'resolution')),
    started_at  TEXT NOT NULL,
    due_at      TEXT,
    total_secs  INTEGER NOT NULL,
    used_secs   INTEGER NOT NULL DEFAULT 0,
    resumed_at  TEXT,
    warned_at   TEXT,
    breached_at TEXT,
    met_at      TEXT,
    PRIMARY KEY (ticket_id, deadline)
) STRICT, WITHOUT ROWID;
CREATE INDEX sla_open ON sla_deadlines(due_at) WHERE met_at IS NULL;

-- The scheduler's memory: the last occurrence of each job that ran.
CREATE TABLE schedule_runs (
    job       TEXT PRIMARY KEY,
    last_run  TEXT NOT NULL
) STRICT;

-- Round robin: the agent who got the last ticket of a queue.
CREATE TABLE assignment_state (
    queue       TEXT PRIMARY KEY,
    last_agent  TEXT NOT NULL
) STRICT;

CREATE INDEX tickets_assignee ON tickets(assignee, status);
"#;

const V5: &str = r#"
-- Full-text search (issue 6): trigram tokens, so that Chinese is found without a word
-- segmenter (queries of three characters or more; shorter ones use LIKE). An external-
-- content index (snippets read the messages table) over the subject and the first 800
-- characters of the text. It is filled at the end of each write transaction, not per
-- message: FTS5 flushes a segment at every savepoint, and ingest runs one savepoint per
-- message (measured: a fifth of the ingest rate). fts_state.last_id is the watermark.
-- 800 characters hold the request of almost every support mail (quoted history comes
-- later); with 2000 the ingest benchmark fell from 6,100 to 4,000 messages a second.
CREATE VIRTUAL TABLE message_fts USING fts5(
    subject, text, tokenize = 'trigram', content = 'messages', content_rowid = 'id'
);
CREATE TABLE fts_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_id INTEGER NOT NULL) STRICT;
INSERT INTO message_fts (rowid, subject, text) SELECT id, subject, substr(text, 1, 800) FROM messages;
INSERT INTO fts_state (id, last_id) SELECT 1, COALESCE(MAX(id), 0) FROM messages;
"#;

const V6: &str = r#"
-- Mailbox health for `postdesk status` (issue 6): is a session up, IDLE or polling, when
-- did the last message come, how many were left on the server after the last batch.
ALTER TABLE mailboxes ADD COLUMN connected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN mode TEXT;
ALTER TABLE mailboxes ADD COLUMN last_message_at TEXT;
ALTER TABLE mailboxes ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0;
"#;

const V7_BOUNDED_QUARANTINE: &str = r#"
-- Bounded quarantine (issue 12): an over-limit message keeps only its headers and a
-- prefix (truncated = 1); size is the whole message's; sha256 (hex) is of the whole
-- message or of the bytes kept, as sha256_of says (NULL for rows older than this).
ALTER TABLE quarantine ADD COLUMN size INTEGER;
ALTER TABLE quarantine ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quarantine ADD COLUMN sha256 TEXT;
ALTER TABLE quarantine ADD COLUMN sha256_of TEXT CHECK (sha256_of IN ('kept', 'whole'));
UPDATE quarantine SET size = length(raw);

-- What each incoming message cost (issue 12), for the largest and slowest messages of
-- the last hour in `postdesk status`: written in its batch's transaction, rows older
-- than an hour pruned once per batch.
CREATE TABLE ingest_costs (
    at          TEXT NOT NULL,
    mailbox     TEXT,
    uid         INTEGER,
    message_id  TEXT,
    size        INTEGER NOT NULL,
    prepare_us  INTEGER NOT NULL,
    outcome     TEXT NOT NULL
) STRICT;
CREATE INDEX ingest_costs_at ON ingest_costs(at);
"#;

const V8_CLASSIFIED_BY: &str = r#"
-- Why an incoming message got its class (issue 13): the recognisers that fired, a JSON
-- list of {recogniser, kind, weight, seen}; '[]' for rows older than this and for our
-- own outgoing mail.
ALTER TABLE messages ADD COLUMN classified_by TEXT NOT NULL DEFAULT '[]';
"#;

const V11_COUNTS: &str = r#"
-- The figures of `postdesk status` (issue 15): counted by triggers as rows come and go,
-- so that status reads a dozen rows instead of counting millions. Filled once here from
-- the tables themselves; `postdesk check --store` compares them with a recount.
CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT, WITHOUT ROWID;
INSERT INTO counts (name, n) VALUES
    ('tickets', (SELECT COUNT(*) FROM tickets)),
    ('messages_in', (SELECT COUNT(*) FROM messages WHERE direction = 'in')),
    ('messages_out', (SELECT COUNT(*) FROM messages WHERE direction = 'out')),
    ('outbox_queued', (SELECT COUNT(*) FROM outbox WHERE state = 'queued')),
    ('outbox_sending', (SELECT COUNT(*) FROM outbox WHERE state = 'sending')),
    ('outbox_sent', (SELECT COUNT(*) FROM outbox WHERE state = 'sent')),
    ('outbox_failed', (SELECT COUNT(*) FROM outbox WHERE state = 'failed')),
    ('quarantine_held', (SELECT COUNT(*) FROM quarantine WHERE state = 'held')),
    ('sla_breaches', (SELECT COUNT(*) FROM sla_deadlines WHERE breached_at IS NOT NULL));

CREATE TRIGGER count_tickets_in AFTER INSERT ON tickets
    BEGIN UPDATE counts SET n = n + 1 WHERE name = 'tickets'; END;
CREATE TRIGGER count_tickets_out AFTER DELETE ON tickets
    BEGIN UPDATE counts SET n = n - 1 WHERE name = 'tickets'; END;
CREATE TRIGGER count_messages_in AFTER INSERT ON messages
    BEGIN UPDATE counts SET n = n + 1 WHERE name = 'messages_' || new.direction; END;
CREATE TRIGGER count_messages_out AFTER DELETE ON messages
    BEGIN UPDATE counts SET n = n - 1 WHERE name = 'messages_' || old.direction; END;
CREATE TRIGGER count_outbox_in AFTER INSERT ON outbox
    BEGIN UPDATE counts SET n = n + 1 WHERE name = 'outbox_' || new.state; END;
CREATE TRIGGER count_outbox_moved AFTER UPDATE OF state ON outbox WHEN old.state IS NOT new.state
    BEGIN
        UPDATE counts SET n = n - 1 WHERE name = 'outbox_' || old.state;
        UPDATE counts SET n = n + 1 WHERE name = 'outbox_' || new.state;
    END;
CREATE TRIGGER count_outbox_out AFTER DELETE ON outbox
    BEGIN UPDATE counts SET n = n - 1 WHERE name = 'outbox_' || old.state; END;
CREATE TRIGGER count_quarantine_in AFTER INSERT ON quarantine WHEN new.state = 'held'
    BEGIN UPDATE counts SET n = n + 1 WHERE name = 'quarantine_held'; END;
CREATE TRIGGER count_quarantine_moved AFTER UPDATE OF state ON quarantine
    WHEN (old.state = 'held') IS NOT (new.state = 'held')
    BEGIN UPDATE counts SET n = n + (CASE WHEN new.state = 'held' THEN 1 ELSE -1 END)
        WHERE name = 'quarantine_held'; END;
CREATE TRIGGER count_quarantine_out AFTER DELETE ON quarantine WHEN old.state = 'held'
    BEGIN UPDATE counts SET n = n - 1 WHERE name = 'quarantine_held'; END;
CREATE TRIGGER count_breaches_in AFTER INSERT ON sla_deadlines WHEN new.breached_at IS NOT NULL
    BEGIN UPDATE counts SET n = n + 1 WHERE name = 'sla_breaches'; END;
CREATE TRIGGER count_breaches_moved AFTER UPDATE OF breached_at ON sla_deadlines
    WHEN (old.breached_at IS NULL) IS NOT (new.breached_at IS NULL)
    BEGIN UPDATE counts SET n = n + (CASE WHEN new.breached_at IS NULL THEN -1 ELSE 1 END)
        WHERE name = 'sla_breaches'; END;
CREATE TRIGGER count_breaches_out AFTER DELETE ON sla_deadlines WHEN old.breached_at IS NOT NULL
    BEGIN UPDATE counts SET n = n - 1 WHERE name = 'sla_breaches'; END;

-- Listings by queue, newest first; held quarantine.
CREATE INDEX tickets_queue ON tickets(queue);
CREATE INDEX quarantine_state ON quarantine(state);
CREATE INDEX outbox_state ON outbox(state);
"#;

const V16_TRIAGE: &str = r#"
-- Triage (issue 16): the prediction made for a new ticket when [triage] mode was
-- suggest or apply, only the guesses above their thresholds. queue and priority hold
-- JSON {"value", "confidence", "applied"} or NULL; tags a JSON list of those.
CREATE TABLE ticket_triage (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    mode      TEXT NOT NULL CHECK (mode IN ('suggest', 'apply')),
    at        TEXT NOT NULL,
    queue     TEXT,
    priority  TEXT,
    tags      TEXT NOT NULL DEFAULT '[]'
) STRICT;
"#;

const V14_FAIR_OUTBOX: &str = r#"
-- Outbox claims fair between mailboxes without ranking every queued row (issue 15: a
-- burst's 13,000 queued acknowledgements cost 30 ms of CPU a claim, and a claim every few
-- sends kept the writer busy). Each row names the mailbox of its ticket (NULL: ticketless
-- mail, or a row sent before this version); the claim reads each mailbox's first due rows
-- through a partial index of the queued rows only.
ALTER TABLE outbox ADD COLUMN mailbox TEXT;
UPDATE outbox SET mailbox = (SELECT t.mailbox FROM tickets t WHERE t.id = outbox.ticket_id)
    WHERE state IN ('queued', 'sending', 'failed') AND ticket_id IS NOT NULL;
CREATE INDEX outbox_fair ON outbox(mailbox, next_attempt_at, id) WHERE state = 'queued';
"#;

const V15_SIMILAR_AND_SELF_SERVICE: &str = r#"
-- Self-service by mail (issue 16): a customer's own open tickets, by requester.
CREATE INDEX tickets_requester ON tickets(requester, status);
-- Similar tickets (issue 16): the words of each new ticket's request (subject and the
-- customer's first text, as crate::words segments them: Latin words, jieba for Chinese),
-- computed off the writer when the message is prepared. Their own FTS5 index (one row a
-- ticket, rowid = ticket id) ranks them by BM25; the writer fills it in its idle time
-- behind the similar_state watermark, as it does the search index; similar_terms keeps
-- each word's document count (by the same indexer), so that a lookup reads only the
-- rarer words' postings. (fts5vocab counts a word's documents by reading its whole
-- posting list: 9 ms a common word at a million tickets.)
CREATE TABLE ticket_words (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    words     TEXT NOT NULL
) STRICT;
CREATE VIRTUAL TABLE similar_fts USING fts5(
    words, content = 'ticket_words', content_rowid = 'ticket_id', tokenize = 'unicode61'
);
CREATE TABLE similar_terms (term TEXT PRIMARY KEY, docs INTEGER NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE similar_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_id INTEGER NOT NULL) STRICT;
INSERT INTO similar_state (id, last_id) VALUES (1, 0);
-- The report's self-service figures: status requests, articles listed, deflections.
CREATE INDEX events_knowledge ON events(kind, at)
    WHERE kind IN ('self_service.status', 'kb.suggested', 'kb.deflected');
"#;

const V13_WRITER_LOOKUPS: &str = r#"
-- Lookups of the writer that read every row of a big store (issue 15, found by profiling
-- ingest into 1,000,000 tickets): the minutely SLA sweep's deadlines still running (it
-- walked every unmet deadline, breached ones included: seconds a sweep, the writer
-- stalled), and the outbox rows of one of our messages (read for every customer reply
-- that quotes one of our Message-IDs: 8 s a reply without it).
CREATE INDEX sla_pending ON sla_deadlines(due_at)
    WHERE met_at IS NULL AND breached_at IS NULL AND due_at IS NOT NULL;
CREATE INDEX outbox_message ON outbox(message);
"#;

const V12_REPORT_VOLUME: &str = r#"
-- The report's volume figures (issue 15), kept by triggers per quarter hour (UTC) and
-- queue, so that `postdesk report` sums a few thousand rows instead of reading every
-- ticket and status change. A slot is the Unix time of its quarter hour divided by 900;
-- every time zone of today starts its days on a quarter hour. Counts follow the ticket's
-- current queue (a moved ticket takes its counts along), as the report always did.
-- `created`: tickets created; `reopened`: status changes to open from pending, resolved or
-- closed; `resolved`, `closed`: status changes to those. store::report reads whole slots
-- here and the partial slots at a period's edges from the rows; a property test compares
-- them with a recount (store::tests).
CREATE TABLE report_volume (
    slot     INTEGER NOT NULL,
    queue    TEXT NOT NULL,
    created  INTEGER NOT NULL DEFAULT 0,
    reopened INTEGER NOT NULL DEFAULT 0,
    resolved INTEGER NOT NULL DEFAULT 0,
    closed   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (slot, queue)
) STRICT, WITHOUT ROWID;

-- What one ticket contributes, by slot (the view is read by the triggers below).
CREATE VIEW report_volume_parts AS
    SELECT id AS ticket_id, CAST(strftime('%s', created_at) AS INTEGER) / 900 AS slot,
           1 AS created, 0 AS reopened, 0 AS resolved, 0 AS closed
    FROM tickets WHERE strftime('%s', created_at) IS NOT NULL
    UNION ALL
    SELECT ticket_id, CAST(strftime('%s', at) AS INTEGER) / 900,
           0, new = 'open', new = 'resolved', new = 'closed'
    FROM events
    WHERE kind = 'status' AND ticket_id IS NOT NULL AND strftime('%s', at) IS NOT NULL
      AND (new IN ('resolved', 'closed')
           OR (new = 'open' AND old IN ('pending', 'resolved', 'closed')));

INSERT INTO report_volume (slot, queue, created, reopened, resolved, closed)
    SELECT p.slot, t.queue, SUM(p.created), SUM(p.reopened), SUM(p.resolved), SUM(p.closed)
    FROM report_volume_parts p JOIN tickets t ON t.id = p.ticket_id
    GROUP BY p.slot, t.queue;

CREATE TRIGGER report_ticket_in AFTER INSERT ON tickets
    WHEN strftime('%s', new.created_at) IS NOT NULL
    BEGIN
        INSERT INTO report_volume (slot, queue, created)
            VALUES (CAST(strftime('%s', new.created_at) AS INTEGER) / 900, new.queue, 1)
            ON CONFLICT (slot, queue) DO UPDATE SET created = created + 1;
    END;
CREATE TRIGGER report_status_in AFTER INSERT ON events
    WHEN new.kind = 'status' AND new.ticket_id IS NOT NULL
         AND strftime('%s', new.at) IS NOT NULL
         AND (new.new IN ('resolved', 'closed')
              OR (new.new = 'open' AND new.old IN ('pending', 'resolved', 'closed')))
    BEGIN
        INSERT INTO report_volume (slot, queue, reopened, resolved, closed)
            SELECT CAST(strftime('%s', new.at) AS INTEGER) / 900, t.queue,
                   new.new = 'open', new.new = 'resolved', new.new = 'closed'
            FROM tickets t WHERE t.id = new.ticket_id
            ON CONFLICT (slot, queue) DO UPDATE SET reopened = reopened + excluded.reopened,
                resolved = resolved + excluded.resolved, closed = closed + excluded.closed;
    END;
CREATE TRIGGER report_ticket_moved AFTER UPDATE OF queue ON tickets
    WHEN old.queue IS NOT new.queue
    BEGIN
        INSERT INTO report_volume (slot, queue, created, reopened, resolved, closed)
            SELECT slot, old.queue, -SUM(created), -SUM(reopened), -SUM(resolved), -SUM(closed)
            FROM report_volume_parts WHERE ticket_id = new.id GROUP BY slot
            ON CONFLICT (slot, queue) DO UPDATE SET created = created + excluded.created,
                reopened = reopened + excluded.reopened, resolved = resolved + excluded.resolved,
                closed = closed + excluded.closed;
        INSERT INTO report_volume (slot, queue, created, reopened, resolved, closed)
            SELECT slot, new.queue, SUM(created), SUM(reopened), SUM(resolved), SUM(closed)
            FROM report_volume_parts WHERE ticket_id = new.id GROUP BY slot
            ON CONFLICT (slot, queue) DO UPDATE SET created = created + excluded.created,
                reopened = reopened + excluded.reopened, resolved = resolved + excluded.resolved,
                closed = closed + excluded.closed;
    END;
CREATE TRIGGER report_ticket_out BEFORE DELETE ON tickets
    BEGIN
        INSERT INTO report_volume (slot, queue, created, reopened, resolved, closed)
            SELECT slot, old.queue, -SUM(created), -SUM(reopened), -SUM(resolved), -SUM(closed)
            FROM report_volume_parts WHERE ticket_id = old.id GROUP BY slot
            ON CONFLICT (slot, queue) DO UPDATE SET created = created + excluded.created,
                reopened = reopened + excluded.reopened, resolved = resolved + excluded.resolved,
                closed = closed + excluded.closed;
    END;

-- The report's other reads by time: tickets created or touched in a period, the oldest
-- tickets still open, SLA deadlines started in a period, and the events the report reads
-- (a partial index of only those kinds, holding every column the report reads, so that a
-- year of events is read from the index alone, in time order).
CREATE INDEX tickets_created ON tickets(created_at);
CREATE INDEX tickets_updated ON tickets(updated_at);
CREATE INDEX tickets_status_age ON tickets(status, created_at);
CREATE INDEX sla_deadlines_started ON sla_deadlines(started_at);
CREATE INDEX events_report ON events(at, ticket_id, kind, actor, old, new)
    WHERE kind IN ('status', 'csat', 'survey.queued', 'first_response', 'answer.queued', 'note');
"#;

const V10_WHOLE_TEXT_SEARCH: &str = r#"
-- Search indexes the whole text, off the ingest transaction (issue 15): the store's
-- writer indexes in its idle time, in batches, behind the fts_state watermark. The old
-- index held the first 800 characters: it is emptied here and rebuilt by the writer.
INSERT INTO message_fts (message_fts) VALUES ('delete-all');
UPDATE fts_state SET last_id = 0 WHERE id = 1;
-- Two-character Chinese, Japanese and Korean words (trigrams need three characters): each
-- run of such characters is stored as its overlapping pairs ("打印机" → "打印 印机"),
-- made by the writer (store::tx::bigrams), contentless, behind the same watermark.
CREATE VIRTUAL TABLE message_bigrams USING fts5(grams, content = '', tokenize = 'unicode61');
"#;

const V9_MAILBOX_ALARMS: &str = r#"
-- Mailbox health and alarms (issue 14). The login: when it last worked, and whether the
-- last attempt was refused (auth_state 'failed', auth_error why, auth_failed_at when).
ALTER TABLE mailboxes ADD COLUMN last_login_at TEXT;
ALTER TABLE mailboxes ADD COLUMN auth_state TEXT CHECK (auth_state IN ('ok', 'failed'));
ALTER TABLE mailboxes ADD COLUMN auth_error TEXT;
ALTER TABLE mailboxes ADD COLUMN auth_failed_at TEXT;
-- An OAuth mailbox's token as the daemon last saw it, for `postdesk status` (a separate
-- process): access and refresh token expiry (where the provider says), and why a new
-- `postdesk login` is needed.
ALTER TABLE mailboxes ADD COLUMN token_expires_at TEXT;
ALTER TABLE mailboxes ADD COLUMN refresh_expires_at TEXT;
ALTER TABLE mailboxes ADD COLUMN token_needs_login TEXT;
-- The open incidents, kept across restarts so that each is mailed once when it opens and
-- once when it closes: the alarm (login-failed or not-syncing) and the token warning.
ALTER TABLE mailboxes ADD COLUMN alarm_kind TEXT
    CHECK (alarm_kind IN ('login-failed', 'not-syncing'));
ALTER TABLE mailboxes ADD COLUMN alarm_since TEXT;
ALTER TABLE mailboxes ADD COLUMN alarm_reason TEXT;
ALTER TABLE mailboxes ADD COLUMN token_warning_since TEXT;
ALTER TABLE mailboxes ADD COLUMN token_warning_reason TEXT;
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
