//! The embedded SQLite store: WAL, `synchronous=FULL`, group commit.
//!
//! Owns everything SQLite-specific. One writer thread owns the only write
//! connection; every write (commits, routing, attempt outcomes) is an
//! operation sent to it. The thread takes whatever operations are waiting
//! (up to [`MAX_GROUP`]) and applies them in one transaction, each inside
//! its own savepoint so one bad operation cannot spoil the others, then
//! commits once: many connections' messages share one fsync, so durability
//! does not cost throughput. Reads run on a small pool of read connections
//! in `spawn_blocking`; WAL lets them read while the writer writes, and
//! lets the CLI read while `serve` runs.
//!
//! Why `rusqlite` rather than `sqlx` (DESIGN.md §5): the writer is a
//! dedicated thread by design, and a synchronous connection there avoids a
//! channel hop per statement that sqlx's SQLite driver makes; measured on
//! this machine, that hop cost more than the fsync it was batching. The
//! PostgreSQL backend uses sqlx (no SQLite feature, so the two never link
//! two copies of libsqlite3).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    AttemptUpdate, DeliveryId, DeliveryState, DeliveryTask, DeliveryView, EventView, Format,
    MessageDetail, MessageId, MessageQuery, MessageState, MessageSummary, NewDelivery, NewMessage,
    Persisted, QueueDepth, RouteOutcome, Store, StoreError, idempotency_key, rfc3339,
};

/// At most this many operations share one transaction.
pub const MAX_GROUP: usize = 128;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/sqlite/0001_init.sql"))];

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Opens a connection with the settings every connection needs.
fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(db_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
    )
    .map_err(db_err)?;
    if read_only {
        conn.execute_batch("PRAGMA query_only=1;").map_err(db_err)?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);",
    )
    .map_err(db_err)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    for (version, sql) in MIGRATIONS {
        if *version > current {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::Backend(format!("migration {version}: {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, micros(Timestamp::now())],
            )
            .map_err(db_err)?;
        }
    }
    tx.commit().map_err(db_err)
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum WriteOp {
    Commit(Vec<NewMessage>, Reply<Vec<Persisted>>),
    Route(MessageId, RouteOutcome, Reply<()>),
    Attempts(Vec<(DeliveryId, AttemptUpdate)>, Reply<()>),
    Reprocess(MessageId, String, Reply<()>),
}

/// What an operation produced, to send once the transaction commits.
enum OpResult {
    Ids(Vec<(MessageId, Option<MessageId>)>),
    Unit,
}

/// The SQLite store.
pub struct SqliteStore {
    writer: mpsc::Sender<WriteOp>,
    readers: Arc<ReaderPool>,
    path: PathBuf,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = {
            let mut idle = self.idle.lock().map_err(|_| StoreError::Closed)?;
            idle.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.path, true)?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 8
        {
            idle.push(conn);
        }
        out
    }
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`, starts the
    /// writer thread, and restricts the files to their owner.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = open_connection(path, false)?;
        migrate(&mut conn)?;
        restrict_permissions(path);
        let (tx, rx) = mpsc::channel::<WriteOp>(4096);
        std::thread::Builder::new()
            .name("caduceus-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: tx,
            readers: Arc::new(ReaderPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> WriteOp) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::set_permissions(PathBuf::from(p), std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>) {
    let mut ops = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        ops.push(first);
        while ops.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        apply_group(&mut conn, &mut ops);
    }
}

fn apply_group(conn: &mut Connection, ops: &mut Vec<WriteOp>) {
    // Fast path: every operation in one transaction, one fsync. Operations
    // almost never fail on their own (a logic error such as routing a message
    // twice); when one does, the group is rolled back and each operation is
    // applied alone, so one bad operation cannot spoil the others. Savepoints
    // per operation would do the same, but SQLite copies every page they
    // touch to a sub-journal: measured, that cost more than this slow path.
    let now = Timestamp::now();
    let mut results = Vec::with_capacity(ops.len());
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(ops.drain(..), &db_err(e)),
    };
    for op in ops.iter() {
        match run_op(&tx, op, now) {
            Ok(r) => results.push(r),
            Err(_) => {
                drop(tx);
                for op in ops.drain(..) {
                    apply_alone(conn, op, now);
                }
                return;
            }
        }
    }
    match tx.commit() {
        Ok(()) => {
            for (op, r) in ops.drain(..).zip(results) {
                send(op, Ok(r));
            }
        }
        Err(e) => {
            let err = db_err(e);
            tracing::error!(error = %err, "store commit failed; nothing in this group was stored");
            fail_all(ops.drain(..), &err);
        }
    }
}

fn apply_alone(conn: &mut Connection, op: WriteOp, now: Timestamp) {
    let result = (|| {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let r = run_op(&tx, &op, now)?;
        tx.commit().map_err(db_err)?;
        Ok(r)
    })();
    send(op, result);
}

fn send(op: WriteOp, result: Result<OpResult, StoreError>) {
    match op {
        WriteOp::Commit(_, reply) => {
            let r = result.map(|r| match r {
                OpResult::Ids(ids) => ids
                    .into_iter()
                    .map(|(id, dup)| Persisted::new(id, dup))
                    .collect(),
                OpResult::Unit => Vec::new(),
            });
            let _ = reply.send(r);
        }
        WriteOp::Route(_, _, reply)
        | WriteOp::Attempts(_, reply)
        | WriteOp::Reprocess(_, _, reply) => {
            let _ = reply.send(result.map(|_| ()));
        }
    }
}

fn fail_all(ops: impl Iterator<Item = WriteOp>, e: &StoreError) {
    for op in ops {
        send(op, Err(e.clone()));
    }
}

fn run_op(tx: &Transaction<'_>, op: &WriteOp, now: Timestamp) -> Result<OpResult, StoreError> {
    match op {
        WriteOp::Commit(msgs, _) => insert_messages(tx, msgs, now).map(OpResult::Ids),
        WriteOp::Route(id, outcome, _) => {
            route(tx, *id, outcome.clone(), now).map(|_| OpResult::Unit)
        }
        WriteOp::Attempts(updates, _) => record_attempts(tx, updates, now).map(|_| OpResult::Unit),
        WriteOp::Reprocess(id, reason, _) => {
            reprocess(tx, *id, reason, now).map(|_| OpResult::Unit)
        }
    }
}

fn insert_event(
    tx: &Transaction<'_>,
    message: MessageId,
    delivery: Option<DeliveryId>,
    now: Timestamp,
    state: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO message_events (message_id, delivery_id, at, state, reason) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| s.execute(params![message.0, delivery.map(|d| d.0), micros(now), state, reason]))
        .map_err(db_err)?;
    Ok(())
}

fn insert_deliveries(
    tx: &Transaction<'_>,
    message: MessageId,
    channel: &str,
    generation: i64,
    deliveries: &[NewDelivery],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO deliveries (message_id, channel, destination, generation, payload, state, attempts, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?6)",
        )
        .map_err(db_err)?;
    for d in deliveries {
        stmt.execute(params![
            message.0,
            channel,
            d.destination,
            generation,
            d.payload.as_deref(),
            micros(now)
        ])
        .map_err(db_err)?;
    }
    Ok(())
}

fn insert_messages(
    tx: &Transaction<'_>,
    msgs: &[NewMessage],
    now: Timestamp,
) -> Result<Vec<(MessageId, Option<MessageId>)>, StoreError> {
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        let mut state = m.state;
        let mut error = m.error.clone();
        let mut duplicate_of = None;
        if let (Some(window), Some(control), true) = (
            m.dedup_window,
            &m.control_id,
            m.state != MessageState::Error,
        ) {
            let since =
                micros(m.received_at) - i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
            let found: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM messages WHERE channel = ?1 AND control_id = ?2 AND sender IS ?3
                     AND received_at >= ?4 AND state IN ('received', 'processed', 'filtered')
                     AND (error IS NULL OR error NOT LIKE 'duplicate of %') ORDER BY id LIMIT 1",
                )
                .and_then(|mut s| {
                    s.query_row(params![m.channel, control, m.sender, since], |r| r.get(0))
                        .optional()
                })
                .map_err(db_err)?;
            if let Some(first) = found {
                if m.idempotent {
                    out.push((MessageId(first), Some(MessageId(first))));
                    continue;
                }
                duplicate_of = Some(MessageId(first));
                state = MessageState::Filtered;
                error = Some(format!(
                    "duplicate of message {first}: same sender and control id within {}",
                    humantime::format_duration(window)
                ));
            }
        }
        tx.prepare_cached(
            "INSERT INTO messages (channel, received_at, format, type, control_id, sender, peer, raw, state, error, initial_state, initial_reason, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11, ?12)",
        )
        .and_then(|mut s| {
            let reason = match (state, &error) {
                (MessageState::Processed, _) => Some(format!("routed to {} destination(s)", m.deliveries.len())),
                (_, Some(e)) => Some(e.clone()),
                _ => None,
            };
            s.execute(params![
                m.channel,
                micros(m.received_at),
                m.format.as_str(),
                m.message_type,
                m.control_id,
                m.sender,
                m.peer,
                &m.raw[..],
                state.as_str(),
                error,
                reason,
                micros(now)
            ])
        })
        .map_err(db_err)?;
        let id = MessageId(tx.last_insert_rowid());
        if state == MessageState::Processed && duplicate_of.is_none() {
            insert_deliveries(tx, id, &m.channel, 1, &m.deliveries, now)?;
        }
        out.push((id, duplicate_of));
    }
    Ok(out)
}

fn route(
    tx: &Transaction<'_>,
    id: MessageId,
    outcome: RouteOutcome,
    now: Timestamp,
) -> Result<(), StoreError> {
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT channel, state FROM messages WHERE id = ?1",
            params![id.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err)?;
    let Some((channel, state)) = row else {
        return Err(StoreError::NotFound(id));
    };
    if state != MessageState::Received.as_str() {
        return Err(StoreError::Backend(format!(
            "message {id} is {state}, not received; it was routed already"
        )));
    }
    let (state, error, mapping, reason) = match &outcome {
        RouteOutcome::Processed {
            deliveries,
            mapping_version,
        } => (
            MessageState::Processed,
            None,
            mapping_version.clone(),
            format!("routed to {} destination(s)", deliveries.len()),
        ),
        RouteOutcome::Filtered { reason } => (
            MessageState::Filtered,
            Some(reason.clone()),
            None,
            reason.clone(),
        ),
        RouteOutcome::Error { reason } => (
            MessageState::Error,
            Some(reason.clone()),
            None,
            reason.clone(),
        ),
    };
    tx.execute(
        "UPDATE messages SET state = ?1, error = ?2, mapping_version = COALESCE(?3, mapping_version), updated_at = ?4 WHERE id = ?5",
        params![state.as_str(), error, mapping, micros(now), id.0],
    )
    .map_err(db_err)?;
    insert_event(tx, id, None, now, state.as_str(), Some(&reason))?;
    if let RouteOutcome::Processed { deliveries, .. } = &outcome {
        let generation: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(generation), 0) + 1 FROM deliveries WHERE message_id = ?1",
                params![id.0],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        insert_deliveries(tx, id, &channel, generation, deliveries, now)?;
    }
    Ok(())
}

fn record_attempts(
    tx: &Transaction<'_>,
    updates: &[(DeliveryId, AttemptUpdate)],
    now: Timestamp,
) -> Result<(), StoreError> {
    for (id, u) in updates {
        let (state, attempts, next, error, response) = match u {
            AttemptUpdate::Sent { attempts, detail } => {
                (DeliveryState::Sent, *attempts, None, None, detail.clone())
            }
            AttemptUpdate::Retrying {
                attempts,
                error,
                next_attempt_at,
            } => (
                DeliveryState::Retrying,
                *attempts,
                Some(micros(*next_attempt_at)),
                Some(error.clone()),
                None,
            ),
            AttemptUpdate::Dead { attempts, error } => (
                DeliveryState::Dead,
                *attempts,
                None,
                Some(error.clone()),
                None,
            ),
        };
        let changed = tx
            .prepare_cached(
                "UPDATE deliveries SET state = ?1, attempts = ?2, next_attempt_at = ?3,
                 last_error = COALESCE(?4, last_error), response = COALESCE(?5, response), updated_at = ?6 WHERE id = ?7",
            )
            .and_then(|mut s| s.execute(params![state.as_str(), attempts, next, error, response, micros(now), id.0]))
            .map_err(db_err)?;
        if changed == 0 {
            return Err(StoreError::Backend(format!("no delivery with id {id}")));
        }
        let reason = match u {
            AttemptUpdate::Sent { detail, .. } => detail.clone(),
            AttemptUpdate::Retrying {
                attempts, error, ..
            } => Some(format!("attempt {attempts} failed: {error}")),
            AttemptUpdate::Dead { error, .. } => Some(error.clone()),
        };
        tx.prepare_cached(
            "INSERT INTO message_events (message_id, delivery_id, at, state, reason)
             SELECT message_id, id, ?1, ?2, ?3 FROM deliveries WHERE id = ?4",
        )
        .and_then(|mut s| s.execute(params![micros(now), state.as_str(), reason, id.0]))
        .map_err(db_err)?;
    }
    Ok(())
}

fn reprocess(
    tx: &Transaction<'_>,
    id: MessageId,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let changed = tx
        .execute(
            "UPDATE messages SET state = 'received', error = NULL, updated_at = ?1 WHERE id = ?2",
            params![micros(now), id.0],
        )
        .map_err(db_err)?;
    if changed == 0 {
        return Err(StoreError::NotFound(id));
    }
    // Pending deliveries of the earlier run would send the old result again.
    let superseded: Vec<i64> = {
        let mut s = tx
            .prepare("SELECT id FROM deliveries WHERE message_id = ?1 AND state IN ('queued', 'retrying')")
            .map_err(db_err)?;
        let rows = s.query_map(params![id.0], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)?
    };
    for d in superseded {
        tx.execute(
            "UPDATE deliveries SET state = 'dead', last_error = 'superseded by reprocess', updated_at = ?1 WHERE id = ?2",
            params![micros(now), d],
        )
        .map_err(db_err)?;
        insert_event(
            tx,
            id,
            Some(DeliveryId(d)),
            now,
            "dead",
            Some("superseded by reprocess"),
        )?;
    }
    insert_event(
        tx,
        id,
        None,
        now,
        "received",
        Some(&format!("reprocess: {reason}")),
    )?;
    Ok(())
}

fn where_clause(q: &MessageQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut conds = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(c) = &q.channel {
        args.push(Value::Text(c.clone()));
        conds.push(format!("channel = ?{}", args.len()));
    }
    if let Some(s) = q.state {
        args.push(Value::Text(s.as_str().into()));
        conds.push(format!("state = ?{}", args.len()));
    }
    if let Some(t) = &q.message_type {
        args.push(Value::Text(t.clone()));
        conds.push(format!("type GLOB ?{}", args.len()));
    }
    if let Some(c) = &q.control_id {
        args.push(Value::Text(c.clone()));
        conds.push(format!("control_id = ?{}", args.len()));
    }
    if let Some(t) = q.since {
        args.push(Value::Integer(micros(t)));
        conds.push(format!("received_at >= ?{}", args.len()));
    }
    let w = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (w, args)
}

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageSummary> {
    let format: String = r.get(3)?;
    let state: String = r.get(6)?;
    Ok(MessageSummary {
        id: MessageId(r.get(0)?),
        channel: r.get(1)?,
        received_at: rfc3339(from_micros(r.get(2)?)),
        format: Format::parse(&format).unwrap_or(Format::Hl7v2),
        message_type: r.get(4)?,
        control_id: r.get(5)?,
        state: MessageState::parse(&state).unwrap_or(MessageState::Error),
        error: r.get(7)?,
    })
}

const SUMMARY_COLUMNS: &str = "id, channel, received_at, format, type, control_id, state, error";

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, messages: Vec<NewMessage>) -> Result<Vec<Persisted>, StoreError> {
        self.write(|r| WriteOp::Commit(messages, r)).await
    }

    async fn received(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<(MessageId, Bytes)>, StoreError> {
        let channel = channel.to_string();
        self.read(move |c| {
            let mut s = c
                .prepare_cached("SELECT id, raw FROM messages WHERE channel = ?1 AND state = 'received' ORDER BY id LIMIT ?2")
                .map_err(db_err)?;
            let rows = s
                .query_map(params![channel, limit], |r| {
                    Ok((MessageId(r.get(0)?), Bytes::from(r.get::<_, Vec<u8>>(1)?)))
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn route(&self, id: MessageId, outcome: RouteOutcome) -> Result<(), StoreError> {
        self.write(|r| WriteOp::Route(id, outcome, r)).await
    }

    async fn pending_deliveries(
        &self,
        channel: &str,
        destination: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryTask>, StoreError> {
        let (channel, destination) = (channel.to_string(), destination.to_string());
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT d.id, d.message_id, d.generation, COALESCE(d.payload, m.raw), m.type, m.control_id, d.attempts, d.created_at, d.next_attempt_at
                     FROM deliveries d JOIN messages m ON m.id = d.message_id
                     WHERE d.channel = ?1 AND d.destination = ?2 AND d.state IN ('queued', 'retrying')
                     ORDER BY d.id LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map(params![channel, destination, limit], |r| {
                    Ok(DeliveryTask {
                        id: DeliveryId(r.get(0)?),
                        message_id: MessageId(r.get(1)?),
                        generation: r.get(2)?,
                        payload: Bytes::from(r.get::<_, Vec<u8>>(3)?),
                        message_type: r.get(4)?,
                        control_id: r.get(5)?,
                        attempts: r.get(6)?,
                        created_at: from_micros(r.get(7)?),
                        next_attempt_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn record_attempts(
        &self,
        updates: Vec<(DeliveryId, AttemptUpdate)>,
    ) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write(|r| WriteOp::Attempts(updates, r)).await
    }

    async fn list(&self, query: &MessageQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let q = query.clone();
        self.read(move |c| {
            let (w, mut args) = where_clause(&q);
            let limit = match q.limit {
                Some(n) => {
                    args.push(rusqlite::types::Value::Integer(
                        i64::try_from(n).unwrap_or(i64::MAX),
                    ));
                    format!("LIMIT ?{}", args.len())
                }
                None => String::new(),
            };
            let sql =
                format!("SELECT {SUMMARY_COLUMNS} FROM messages {w} ORDER BY id DESC {limit}");
            let mut s = c.prepare(&sql).map_err(db_err)?;
            let rows = s
                .query_map(rusqlite::params_from_iter(args), summary_from_row)
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn count(&self, query: &MessageQuery) -> Result<u64, StoreError> {
        let q = query.clone();
        self.read(move |c| {
            let (w, args) = where_clause(&q);
            let sql = format!("SELECT COUNT(*) FROM messages {w}");
            let n: i64 = c
                .query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))
                .map_err(db_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<MessageDetail>, StoreError> {
        self.read(move |c| {
            let row = c
                .query_row(
                    &format!(
                        "SELECT {SUMMARY_COLUMNS}, sender, peer, mapping_version, raw, received_at, initial_state, initial_reason FROM messages WHERE id = ?1"
                    ),
                    params![id.0],
                    |r| {
                        Ok((
                            summary_from_row(r)?,
                            r.get::<_, Option<String>>(8)?,
                            r.get::<_, Option<String>>(9)?,
                            r.get::<_, Option<String>>(10)?,
                            r.get::<_, Vec<u8>>(11)?,
                            EventView {
                                at: rfc3339(from_micros(r.get(12)?)),
                                delivery_id: None,
                                state: r.get(13)?,
                                reason: r.get(14)?,
                            },
                        ))
                    },
                )
                .optional()
                .map_err(db_err)?;
            let Some((summary, sender, peer, mapping_version, raw, first)) = row else {
                return Ok(None);
            };
            let mut s = c
                .prepare(
                    "SELECT id, destination, generation, state, attempts, next_attempt_at, last_error, response
                     FROM deliveries WHERE message_id = ?1 ORDER BY id",
                )
                .map_err(db_err)?;
            let deliveries = s
                .query_map(params![id.0], |r| {
                    let state: String = r.get(3)?;
                    let destination: String = r.get(1)?;
                    let generation: i64 = r.get(2)?;
                    Ok(DeliveryView {
                        id: r.get(0)?,
                        idempotency_key: idempotency_key(id, &destination, generation),
                        destination,
                        generation,
                        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Dead),
                        attempts: r.get(4)?,
                        next_attempt_at: r.get::<_, Option<i64>>(5)?.map(|t| rfc3339(from_micros(t))),
                        last_error: r.get(6)?,
                        response: r.get(7)?,
                    })
                })
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            let mut s = c
                .prepare("SELECT at, delivery_id, state, reason FROM message_events WHERE message_id = ?1 ORDER BY id")
                .map_err(db_err)?;
            let mut events = vec![first];
            let more = s
                .query_map(params![id.0], |r| {
                    Ok(EventView {
                        at: rfc3339(from_micros(r.get(0)?)),
                        delivery_id: r.get(1)?,
                        state: r.get(2)?,
                        reason: r.get(3)?,
                    })
                })
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            events.extend(more);
            Ok(Some(MessageDetail {
                summary,
                sender,
                peer,
                mapping_version,
                raw: Bytes::from(raw),
                deliveries,
                events,
            }))
        })
        .await
    }

    async fn reprocess(&self, id: MessageId, reason: &str) -> Result<(), StoreError> {
        let reason = reason.to_string();
        self.write(|r| WriteOp::Reprocess(id, reason, r)).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT channel, destination, COUNT(*) FROM deliveries WHERE state IN ('queued', 'retrying') GROUP BY channel, destination",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map([], |r| {
                    Ok(QueueDepth {
                        channel: r.get(0)?,
                        destination: r.get(1)?,
                        depth: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn healthy(&self) -> bool {
        if self.writer.is_closed() {
            return false;
        }
        self.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(db_err)
        })
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: &str, control: &str, state: MessageState, dests: &[&str]) -> NewMessage {
        NewMessage {
            channel: channel.into(),
            received_at: Timestamp::now(),
            format: Format::Hl7v2,
            message_type: Some("ADT^A01".into()),
            control_id: Some(control.into()),
            sender: Some("APP^FAC".into()),
            peer: None,
            raw: Bytes::from_static(b"MSH|^~\\&|APP|FAC\r\xEF\xBB\xBF\n"),
            state,
            error: None,
            deliveries: dests
                .iter()
                .map(|d| NewDelivery {
                    destination: d.to_string(),
                    payload: None,
                })
                .collect(),
            dedup_window: None,
            idempotent: false,
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn commit_route_deliver_and_show() {
        let (_d, s) = store().await;
        let p = s
            .commit(vec![msg("c", "1", MessageState::Processed, &["a", "b"])])
            .await
            .unwrap();
        let id = p[0].id();
        let pending = s.pending_deliveries("c", "a", 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].payload.as_ref(),
            b"MSH|^~\\&|APP|FAC\r\xEF\xBB\xBF\n"
        );
        s.record_attempts(vec![(
            pending[0].id,
            AttemptUpdate::Retrying {
                attempts: 1,
                error: "connection refused".into(),
                next_attempt_at: Timestamp::now(),
            },
        )])
        .await
        .unwrap();
        s.record_attempts(vec![(
            pending[0].id,
            AttemptUpdate::Sent {
                attempts: 2,
                detail: Some("AA".into()),
            },
        )])
        .await
        .unwrap();
        assert!(s.pending_deliveries("c", "a", 10).await.unwrap().is_empty());
        let detail = s.get(id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries.len(), 2);
        assert_eq!(detail.deliveries[0].state, DeliveryState::Sent);
        assert_eq!(detail.deliveries[0].attempts, 2);
        assert_eq!(detail.deliveries[0].idempotency_key, format!("{id}-a"));
        assert_eq!(detail.events.len(), 3);
        let depths = s.queue_depths().await.unwrap();
        assert_eq!(depths.len(), 1);
        assert_eq!(depths[0].destination, "b");
    }

    #[tokio::test]
    async fn concurrent_commits_share_transactions_and_all_land() {
        let (_d, s) = store().await;
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.commit(vec![msg(
                    "c",
                    &i.to_string(),
                    MessageState::Processed,
                    &["a"],
                )])
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(s.count(&MessageQuery::default()).await.unwrap(), 200);
        assert_eq!(
            s.pending_deliveries("c", "a", 1000).await.unwrap().len(),
            200
        );
        let q = MessageQuery {
            limit: Some(5),
            ..Default::default()
        };
        let listed = s.list(&q).await.unwrap();
        assert_eq!(listed.len(), 5);
        assert!(listed[0].id > listed[4].id);
    }

    #[tokio::test]
    async fn duplicates_within_window_are_filtered() {
        let (_d, s) = store().await;
        let mut m = msg("c", "X1", MessageState::Processed, &["a"]);
        m.dedup_window = Some(Duration::from_secs(600));
        let first = s.commit(vec![m.clone()]).await.unwrap();
        let second = s.commit(vec![m.clone()]).await.unwrap();
        assert_eq!(first[0].duplicate_of(), None);
        assert_eq!(second[0].duplicate_of(), Some(first[0].id()));
        let d = s.get(second[0].id()).await.unwrap().unwrap();
        assert_eq!(d.summary.state, MessageState::Filtered);
        assert!(d.deliveries.is_empty());
        // Without a window, the same control id is a new message.
        m.dedup_window = None;
        let third = s.commit(vec![m]).await.unwrap();
        assert_eq!(third[0].duplicate_of(), None);
    }

    #[tokio::test]
    async fn idempotent_repeats_are_not_stored_again() {
        let (_d, s) = store().await;
        let mut m = msg("c", "K1", MessageState::Processed, &["a"]);
        m.dedup_window = Some(Duration::from_secs(600));
        m.idempotent = true;
        let first = s.commit(vec![m.clone()]).await.unwrap();
        // Again, and twice in one transaction: the first id each time.
        let again = s.commit(vec![m.clone(), m.clone()]).await.unwrap();
        assert!(
            again
                .iter()
                .all(|p| p.id() == first[0].id() && p.duplicate_of() == Some(first[0].id()))
        );
        assert_eq!(s.list(&MessageQuery::default()).await.unwrap().len(), 1);
        // A first attempt that was refused (`error`) does not hold the key.
        let mut bad = msg("c", "K2", MessageState::Error, &[]);
        bad.dedup_window = m.dedup_window;
        bad.idempotent = true;
        s.commit(vec![bad]).await.unwrap();
        let mut good = msg("c", "K2", MessageState::Processed, &["a"]);
        good.dedup_window = m.dedup_window;
        good.idempotent = true;
        let g = s.commit(vec![good]).await.unwrap();
        assert_eq!(g[0].duplicate_of(), None);
    }

    #[tokio::test]
    async fn reprocess_and_route() {
        let (_d, s) = store().await;
        let p = s
            .commit(vec![msg("c", "1", MessageState::Processed, &["a"])])
            .await
            .unwrap();
        let id = p[0].id();
        s.reprocess(id, "operator asked").await.unwrap();
        assert_eq!(s.received("c", 10).await.unwrap().len(), 1);
        s.route(
            id,
            RouteOutcome::Processed {
                deliveries: vec![NewDelivery {
                    destination: "a".into(),
                    payload: Some(Bytes::from_static(b"mapped")),
                }],
                mapping_version: Some("v2".into()),
            },
        )
        .await
        .unwrap();
        let d = s.get(id).await.unwrap().unwrap();
        assert_eq!(d.deliveries.len(), 2);
        assert_eq!(d.deliveries[0].state, DeliveryState::Dead);
        assert_eq!(d.deliveries[1].generation, 2);
        assert_eq!(d.deliveries[1].idempotency_key, format!("{id}-a-r2"));
        let pending = s.pending_deliveries("c", "a", 10).await.unwrap();
        assert_eq!(pending[0].payload.as_ref(), b"mapped");
        // Routing twice is refused; unknown ids are errors.
        assert!(
            s.route(id, RouteOutcome::Filtered { reason: "x".into() })
                .await
                .is_err()
        );
        assert!(matches!(
            s.reprocess(MessageId(999), "x").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            s.record_attempts(vec![(
                DeliveryId(999),
                AttemptUpdate::Dead {
                    attempts: 1,
                    error: "x".into()
                }
            )])
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn queries_filter() {
        let (_d, s) = store().await;
        s.commit(vec![
            msg("a", "1", MessageState::Processed, &[]),
            msg("b", "2", MessageState::Error, &[]),
            msg("b", "3", MessageState::Filtered, &[]),
        ])
        .await
        .unwrap();
        let q =
            |channel: Option<&str>, state: Option<MessageState>, ty: Option<&str>| MessageQuery {
                channel: channel.map(String::from),
                state,
                message_type: ty.map(String::from),
                ..Default::default()
            };
        assert_eq!(s.count(&q(Some("b"), None, None)).await.unwrap(), 2);
        assert_eq!(
            s.count(&q(None, Some(MessageState::Error), None))
                .await
                .unwrap(),
            1
        );
        assert_eq!(s.count(&q(None, None, Some("ADT^A0*"))).await.unwrap(), 3);
        assert_eq!(s.count(&q(None, None, Some("ORU*"))).await.unwrap(), 0);
        let by_ctrl = MessageQuery {
            control_id: Some("3".into()),
            ..Default::default()
        };
        assert_eq!(
            s.list(&by_ctrl).await.unwrap()[0].state,
            MessageState::Filtered
        );
        assert!(s.healthy().await);
    }
}
