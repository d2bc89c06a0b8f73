//! The baselines that do only what durability requires: the one the MLLP
//! benchmark compares with (frames with the same codec, takes MSH-10 from
//! the first line, group-commits the raw bytes to SQLite and answers a
//! minimal AA, in order, per connection), and the [`RawStore`] it and the
//! FHIR benchmark's stored baseline commit with (WAL, `synchronous=FULL`,
//! up to 64 bodies per transaction, as the engine's store). No parsing,
//! validation, routing, queues or metrics: the gap between them and `serve`
//! is the engine's own cost.

use std::net::SocketAddr;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use rusqlite::{Connection, params};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::connectors::mllp::codec::{Frame, MllpCodec, frame};

type Job = (Bytes, oneshot::Sender<bool>);

/// A running baseline server.
pub struct Baseline {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Raw bodies group-committed to SQLite by a writer thread, as the
/// engine's store commits them (one transaction and one fsync per group).
#[derive(Clone)]
pub struct RawStore {
    tx: mpsc::Sender<Job>,
}

impl RawStore {
    /// Opens (creating) `dir/baseline.db` and starts the writer.
    pub fn open(dir: &Path) -> Result<RawStore, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let conn = Connection::open(dir.join("baseline.db")).map_err(|e| e.to_string())?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        std::thread::spawn(move || writer(conn, rx));
        Ok(RawStore { tx })
    }

    /// Commits one body; true once it is durable.
    pub async fn commit(&self, body: Bytes) -> bool {
        let (r, w) = oneshot::channel();
        self.tx.send((body, r)).await.is_ok() && w.await.unwrap_or(false)
    }
}

/// Starts the baseline on 127.0.0.1 with its database in `dir`.
pub async fn start(dir: &Path) -> Result<Baseline, String> {
    let store = RawStore::open(dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((sock, _)) => { tokio::spawn(connection(sock, store.clone())); }
                    Err(_) => continue,
                },
                _ = s.cancelled() => return,
            }
        }
    });
    Ok(Baseline { addr, stop })
}

fn writer(mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(64);
    while let Some(j) = rx.blocking_recv() {
        jobs.push(j);
        while jobs.len() < 64 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let ok = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO raw (body) VALUES (?1)")?;
                for (b, _) in &jobs {
                    stmt.execute(params![&b[..]])?;
                }
            }
            tx.commit()
        })()
        .is_ok();
        for (_, reply) in jobs.drain(..) {
            let _ = reply.send(ok);
        }
    }
}

fn control_id(msg: &[u8]) -> &[u8] {
    let line_end = msg
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(msg.len());
    let sep = msg.get(3).copied().unwrap_or(b'|');
    msg[..line_end].split(|&b| b == sep).nth(9).unwrap_or(b"")
}

async fn connection(sock: TcpStream, store: RawStore) {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let mut codec = MllpCodec::new(10 << 20);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut inflight = FuturesOrdered::new();
    let mut reading = true;
    loop {
        while let Ok(Some(Frame::Message(m))) = codec.decode(&mut buf) {
            let store = store.clone();
            inflight.push_back(async move {
                let ctrl = control_id(&m).to_vec();
                let ok = store.commit(m).await;
                let mut ack = b"MSH|^~\\&|BASE|BASE|||20240101000000||ACK|1|P|2.5\rMSA|".to_vec();
                ack.extend_from_slice(if ok { b"AA|" } else { b"AE|" });
                ack.extend_from_slice(&ctrl);
                ack.push(b'\r');
                frame(&ack)
            });
        }
        if !reading && inflight.is_empty() {
            return;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        tokio::select! {
            Some(ack) = inflight.next(), if !inflight.is_empty() => {
                if wr.write_all(&ack).await.is_err() { return; }
            }
            r = rd.read_buf(&mut buf), if reading => {
                if matches!(r, Ok(0) | Err(_)) { reading = false; }
            }
        }
    }
}
