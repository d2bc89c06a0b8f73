//! The MLLP listener: accepts connections (TCP or TLS), frames, hands each
//! message to the channel's intake and writes ACKs back in order.
//!
//! Owns connection handling: the connection limit, pipelining (up to
//! `max_in_flight` frames of one connection are committed concurrently, so
//! they share group commits, while their ACKs still go back in the order
//! the frames came), the idle and read timeouts, and refusing oversized
//! frames. It does not decide what a message means (the intake does).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use super::codec::{CR, FS, Frame, MllpCodec, VT};
use super::config::MllpSourceConfig;
use crate::pipeline::intake::Hl7Intake;

/// A running listener's settings.
pub struct MllpListener {
    /// The bound socket.
    pub listener: TcpListener,
    /// Its config.
    pub config: MllpSourceConfig,
    /// TLS, when configured.
    pub tls: Option<Arc<crate::tls::reload::ReloadingServerConfig>>,
    /// Where messages go.
    pub intake: Arc<Hl7Intake>,
}

impl MllpListener {
    /// Accepts connections until `shutdown`; then waits for open
    /// connections to finish what they have in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let settings = Arc::new(self.config);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            let (tcp, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(channel = self.intake.channel(), error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => break,
            };
            let _ = tcp.set_nodelay(true);
            let (intake, settings, tls, stop) = (
                self.intake.clone(),
                settings.clone(),
                self.tls.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                let _permit = permit;
                match tls {
                    None => connection(tcp, peer, &settings, &intake, &stop).await,
                    Some(reloading) => {
                        let acceptor = TlsAcceptor::from(reloading.current());
                        match tokio::time::timeout(settings.read_timeout.get(), acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => connection(stream, peer, &settings, &intake, &stop).await,
                            Ok(Err(e)) => {
                                tracing::info!(channel = intake.channel(), %peer, error = %e, "TLS handshake refused")
                            }
                            Err(_) => tracing::info!(channel = intake.channel(), %peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }
}

fn push_frame(out: &mut Vec<u8>, msg: &[u8]) {
    out.reserve(msg.len() + 3);
    out.push(VT);
    out.extend_from_slice(msg);
    out.extend_from_slice(&[FS, CR]);
}

/// Serves one connection until EOF, a timeout or shutdown.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    cfg: &MllpSourceConfig,
    intake: &Arc<Hl7Intake>,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let channel = intake.channel().to_string();
    tracing::debug!(%channel, %peer, "connection opened");
    let (mut rd, mut wr) = tokio::io::split(stream);
    let max = cfg.max_message_size.as_usize();
    let mut codec = MllpCodec::new(max);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut inflight = FuturesOrdered::new();
    let max_in_flight = cfg.max_in_flight.max(1);
    let peer_s = peer.to_string();
    let mut reading = true;
    let mut frame_started: Option<Instant> = None;
    let mut last_activity = Instant::now();
    let mut out = Vec::with_capacity(1024);
    loop {
        while inflight.len() < max_in_flight {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => {
                    let intake = intake.clone();
                    let peer = peer_s.clone();
                    inflight.push_back(async move {
                        match f {
                            Frame::Message(bytes) => intake.receive(bytes, Some(peer)).await.ack,
                            Frame::Oversized { head, len } => {
                                tracing::warn!(channel = intake.channel(), %peer, bytes = len, limit = max, "oversized frame refused");
                                intake.refuse_oversized(&head, len, max).ack
                            }
                        }
                    });
                }
                Ok(None) => break,
                Err(_) => {
                    reading = false;
                    break;
                }
            }
        }
        if codec.in_frame() {
            frame_started.get_or_insert_with(Instant::now);
        } else {
            frame_started = None;
        }
        if !reading && inflight.is_empty() {
            break;
        }
        let deadline = match frame_started {
            Some(t) => t + cfg.read_timeout.get(),
            None => last_activity + cfg.idle_timeout.get(),
        };
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            Some(ack) = inflight.next(), if !inflight.is_empty() => {
                // Write this ACK and every one already done after it in one
                // write (order is kept: FuturesOrdered yields in order).
                out.clear();
                let mut next = Some(ack);
                while let Some(ack) = next {
                    if let Some(ack) = ack {
                        push_frame(&mut out, &ack);
                    }
                    next = inflight.next().now_or_never().flatten();
                }
                if !out.is_empty() && wr.write_all(&out).await.is_err() {
                    break;
                }
                last_activity = Instant::now();
            }
            r = rd.read_buf(&mut buf), if reading && inflight.len() < max_in_flight => {
                match r {
                    Ok(0) | Err(_) => reading = false,
                    Ok(_) => last_activity = Instant::now(),
                }
            }
            _ = tokio::time::sleep_until(deadline), if inflight.is_empty() => {
                tracing::debug!(%channel, %peer, in_frame = frame_started.is_some(), "closing connection: timeout");
                break;
            }
            _ = shutdown.cancelled(), if reading => {
                reading = false;
            }
        }
    }
    let _ = wr.shutdown().await;
    if codec.junk_bytes > 0 {
        tracing::debug!(%channel, %peer, bytes = codec.junk_bytes, "dropped bytes outside MLLP frames");
    }
    tracing::debug!(%channel, %peer, "connection closed");
}
