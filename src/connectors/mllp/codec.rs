//! MLLP framing: `<VT> message <FS><CR>` (0x0B … 0x1C 0x0D).
//!
//! Owns cutting a byte stream into frames and wrapping frames for sending.
//! Several frames in one read and one frame over many reads are both
//! normal: the decoder keeps a scan position so a frame arriving a byte at
//! a time costs linear, not quadratic, work. Memory is bounded: bytes
//! outside a frame are dropped as they arrive, and a frame that grows past
//! the limit is discarded as it streams in, keeping only its first
//! [`HEAD_KEEP`] bytes so the listener can still recover MSH-10 and answer
//! with an AR. A lone `FS` not followed by `CR` also ends a frame (some
//! senders omit the `CR`).

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Start block.
pub const VT: u8 = 0x0B;
/// End block.
pub const FS: u8 = 0x1C;
/// Carriage return after the end block.
pub const CR: u8 = 0x0D;

/// Bytes of an oversized frame kept for recovering its header.
pub const HEAD_KEEP: usize = 4096;

/// What the decoder yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete message (the bytes between the markers, exactly).
    Message(Bytes),
    /// A frame larger than the limit, discarded: its first bytes and its length.
    Oversized {
        /// Up to [`HEAD_KEEP`] first bytes.
        head: Bytes,
        /// The whole frame's length.
        len: usize,
    },
}

#[derive(Debug)]
enum State {
    /// Between frames: waiting for VT.
    Idle,
    /// Inside a frame; `scanned` bytes of the buffer hold no FS.
    InFrame { scanned: usize },
    /// Inside an oversized frame, dropping bytes.
    Discard { head: Bytes, len: usize },
}

/// The MLLP codec.
#[derive(Debug)]
pub struct MllpCodec {
    max_frame: usize,
    state: State,
    /// Bytes dropped outside frames (not whitespace), for diagnostics.
    pub junk_bytes: u64,
}

impl MllpCodec {
    /// A codec refusing frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> MllpCodec {
        MllpCodec {
            max_frame,
            state: State::Idle,
            junk_bytes: 0,
        }
    }

    /// True while a frame has started but not ended.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Idle)
    }
}

/// Framing errors (never raised for content; only I/O passes through).
pub type CodecError = std::io::Error;

impl Decoder for MllpCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        loop {
            match &mut self.state {
                State::Idle => match memchr::memchr(VT, buf) {
                    Some(i) => {
                        self.junk_bytes +=
                            buf[..i].iter().filter(|b| !b.is_ascii_whitespace()).count() as u64;
                        buf.advance(i + 1);
                        self.state = State::InFrame { scanned: 0 };
                    }
                    None => {
                        self.junk_bytes +=
                            buf.iter().filter(|b| !b.is_ascii_whitespace()).count() as u64;
                        buf.clear();
                        return Ok(None);
                    }
                },
                State::InFrame { scanned } => {
                    let from = (*scanned).min(buf.len());
                    match memchr::memchr(FS, &buf[from..]) {
                        Some(rel) => {
                            let i = from + rel;
                            if i + 1 >= buf.len() {
                                // FS is the last byte so far: wait to see if CR follows.
                                *scanned = i;
                                if i > self.max_frame {
                                    self.start_discard(buf, i);
                                }
                                return Ok(None);
                            }
                            let end_len = if buf[i + 1] == CR { 2 } else { 1 };
                            if i > self.max_frame {
                                let head = Bytes::copy_from_slice(&buf[..HEAD_KEEP.min(i)]);
                                buf.advance(i + end_len);
                                self.state = State::Idle;
                                return Ok(Some(Frame::Oversized { head, len: i }));
                            }
                            let frame = buf.split_to(i).freeze();
                            buf.advance(end_len);
                            self.state = State::Idle;
                            return Ok(Some(Frame::Message(frame)));
                        }
                        None => {
                            *scanned = buf.len();
                            if buf.len() > self.max_frame {
                                let n = buf.len();
                                self.start_discard(buf, n);
                            }
                            return Ok(None);
                        }
                    }
                }
                State::Discard { head, len } => match memchr::memchr(FS, buf) {
                    Some(i) if i + 1 < buf.len() => {
                        let end_len = if buf[i + 1] == CR { 2 } else { 1 };
                        let total = *len + i;
                        let head = std::mem::take(head);
                        buf.advance(i + end_len);
                        self.state = State::Idle;
                        return Ok(Some(Frame::Oversized { head, len: total }));
                    }
                    Some(i) => {
                        // FS is the last byte: keep only it.
                        *len += i;
                        buf.advance(i);
                        return Ok(None);
                    }
                    None => {
                        *len += buf.len();
                        buf.clear();
                        return Ok(None);
                    }
                },
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode(buf)? {
            Some(f) => Ok(Some(f)),
            None => {
                // An unterminated frame at EOF is dropped: the sender got no
                // ACK for it and will send it again.
                buf.clear();
                self.state = State::Idle;
                Ok(None)
            }
        }
    }
}

impl MllpCodec {
    fn start_discard(&mut self, buf: &mut BytesMut, upto: usize) {
        let head = Bytes::copy_from_slice(&buf[..HEAD_KEEP.min(upto)]);
        buf.advance(upto);
        self.state = State::Discard { head, len: upto };
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let b = item.as_ref();
        dst.reserve(b.len() + 3);
        dst.extend_from_slice(&[VT]);
        dst.extend_from_slice(b);
        dst.extend_from_slice(&[FS, CR]);
        Ok(())
    }
}

/// Wraps one message in MLLP markers.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(message.len() + 3);
    v.push(VT);
    v.extend_from_slice(message);
    v.extend_from_slice(&[FS, CR]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(codec: &mut MllpCodec, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn pipelined_frames_in_one_read() {
        let mut data = frame(b"MSH|1");
        data.extend(frame(b"MSH|2"));
        data.extend(frame(b"MSH|3"));
        let out = decode_all(&mut MllpCodec::new(1024), &[&data]);
        assert_eq!(out, vec![msg("MSH|1"), msg("MSH|2"), msg("MSH|3")]);
    }

    #[test]
    fn one_byte_at_a_time() {
        let data = [frame(b"MSH|a\rPID|1"), frame(b"MSH|b")].concat();
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let out = decode_all(&mut MllpCodec::new(1024), &chunks);
        assert_eq!(out, vec![msg("MSH|a\rPID|1"), msg("MSH|b")]);
    }

    #[test]
    fn junk_between_frames_and_missing_cr() {
        let data = [
            b"\r\ngarbage".to_vec(),
            frame(b"MSH|1"),
            b"xx\x0bMSH|2\x1c\x0bMSH|3\x1c\r".to_vec(),
        ]
        .concat();
        let mut c = MllpCodec::new(1024);
        let out = decode_all(&mut c, &[&data]);
        assert_eq!(out, vec![msg("MSH|1"), msg("MSH|2"), msg("MSH|3")]);
        assert_eq!(c.junk_bytes, 9);
    }

    #[test]
    fn oversized_frames_are_discarded_with_bounded_memory() {
        let mut c = MllpCodec::new(100);
        let mut buf = BytesMut::new();
        let header = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|BIG1|P|2.5\r";
        buf.extend_from_slice(&[VT]);
        buf.extend_from_slice(header);
        let mut frames = Vec::new();
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'x'; 1000]);
            while let Some(f) = c.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert!(buf.len() <= 1100, "buffer grew to {}", buf.len());
        }
        buf.extend_from_slice(&[FS, CR]);
        buf.extend_from_slice(&frame(b"MSH|next"));
        while let Some(f) = c.decode(&mut buf).unwrap() {
            frames.push(f);
        }
        assert_eq!(frames.len(), 2);
        match &frames[0] {
            Frame::Oversized { head, len } => {
                assert!(head.starts_with(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|BIG1"));
                assert_eq!(*len, 1_000_000 + header.len());
            }
            f => panic!("{f:?}"),
        }
        assert_eq!(frames[1], msg("MSH|next"));
    }

    #[test]
    fn unterminated_frame_at_eof_is_dropped() {
        let mut c = MllpCodec::new(100);
        let mut buf = BytesMut::from(&b"\x0bMSH|partial"[..]);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
        assert!(!c.in_frame());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_frames(msgs in prop::collection::vec("[A-Z|^~\r]{0,40}", 1..6), cuts in prop::collection::vec(1usize..20, 1..50)) {
            let data: Vec<u8> = msgs.iter().flat_map(|m| frame(m.as_bytes())).collect();
            let mut chunks = Vec::new();
            let mut pos = 0;
            for c in cuts.iter().cycle() {
                if pos >= data.len() { break; }
                let end = (pos + c).min(data.len());
                chunks.push(&data[pos..end]);
                pos = end;
            }
            let out = decode_all(&mut MllpCodec::new(1 << 20), &chunks);
            let want: Vec<Frame> = msgs.iter().map(|m| msg(m)).collect();
            prop_assert_eq!(out, want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048), max in 1usize..256) {
            let mut c = MllpCodec::new(max);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = c.decode(&mut buf) {}
            prop_assert!(buf.len() <= max + 1 + 1);
        }
    }
}
