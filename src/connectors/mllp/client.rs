//! A plain MLLP client connection: connect (TCP or TLS), write frames,
//! read frames. Used by the MLLP destination, `caduceus send mllp` and
//! `caduceus bench mllp`.
//!
//! Owns the byte-level exchange only; what an ACK means is the caller's.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Decoder;

use super::codec::{Frame, MllpCodec, frame};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting failed or timed out.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// Where.
        address: String,
        /// Why.
        reason: String,
    },
    /// The connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before answering.
    #[error("the peer closed the connection before answering")]
    Closed,
    /// The answer was larger than allowed.
    #[error("the peer answered with a {0}-byte frame, larger than allowed")]
    Oversized(usize),
}

/// One MLLP connection.
pub struct Client {
    io: Box<dyn Stream>,
    codec: MllpCodec,
    buf: BytesMut,
}

impl Client {
    /// Connects, with TLS when `tls` is given.
    pub async fn connect(
        address: &str,
        timeout: Duration,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
        max_frame: usize,
    ) -> Result<Client, ClientError> {
        let fail = |reason: String| ClientError::Connect {
            address: address.to_string(),
            reason,
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some((config, name)) => {
                let s =
                    tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, tcp))
                        .await
                        .map_err(|_| fail("TLS handshake timed out".into()))?
                        .map_err(|e| fail(format!("TLS handshake failed: {e}")))?;
                Box::new(s)
            }
        };
        Ok(Client {
            io,
            codec: MllpCodec::new(max_frame),
            buf: BytesMut::with_capacity(8192),
        })
    }

    /// Writes one framed message (without waiting for anything).
    pub async fn write(&mut self, message: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(&frame(message)).await?;
        Ok(())
    }

    /// Flushes written frames.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.io.flush().await?;
        Ok(())
    }

    /// Reads the next frame.
    pub async fn read(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            match self.codec.decode(&mut self.buf)? {
                Some(Frame::Message(m)) => return Ok(m.to_vec()),
                Some(Frame::Oversized { len, .. }) => return Err(ClientError::Oversized(len)),
                None => {}
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(8192);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Sends a message and reads the answer.
    pub async fn send(&mut self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.write(message).await?;
        self.flush().await?;
        self.read().await
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.io.shutdown().await;
    }
}
