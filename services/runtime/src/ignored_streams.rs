//! Keeping h2 from failing a connection over the WINDOW_UPDATEs of streams
//! it ignores after its final GOAWAY.
//!
//! At a connection's age (and at the drain) h2 closes gracefully: GOAWAY
//! with the highest stream id and a PING; when the client acks that PING,
//! a second GOAWAY with the last stream it processed, and from then on it
//! ignores HEADERS, DATA and RST_STREAM of any newer stream, as RFC 9113
//! §6.8 asks. A client that wrote a new call before it read the first
//! GOAWAY sends that call's frames after its ack; grpc-core follows every
//! HEADERS with a WINDOW_UPDATE on the same stream. h2 (0.4.20 and 0.4.21)
//! does not ignore that one: the stream was never opened, so it reads the
//! frame as one on an idle stream and fails the whole connection with
//! GOAWAY(PROTOCOL_ERROR), and grpc-core fails the call instead of retrying
//! it elsewhere (1 in about 300 age-outs of a busy grpcio client, seen as
//! `GOAWAY received; Error code: 1`).
//!
//! [`IgnoredStreams`] reads the client's bytes as h2 will and drops exactly
//! those frames: WINDOW_UPDATEs for streams newer than every HEADERS that
//! came before the ack of h2's shutdown PING. h2 handles frames in order and
//! lowers its last stream at that ack, so those are the streams it ignores;
//! every other byte passes unchanged.

/// The client's connection preface, before its first frame.
const PREFACE_LEN: usize = 24;
/// Every frame starts with this many bytes: length, type, flags, stream.
const HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;
/// The payload of the PING h2 sends when it starts a graceful shutdown
/// (`h2::frame::Ping::SHUTDOWN`).
const SHUTDOWN_PING: [u8; 8] = [0x0b, 0x7b, 0xa2, 0xf0, 0x8b, 0x9b, 0xfe, 0x54];

/// The reader's place in the client's byte stream.
#[derive(Debug, Default)]
pub(crate) struct IgnoredStreams {
    /// Preface bytes still to pass.
    preface_left: usize,
    /// The frame header read so far, or the whole of a short frame the
    /// filter must see before it passes on (a WINDOW_UPDATE, a PING ack).
    held: Vec<u8>,
    /// Payload bytes of the current frame still to pass.
    payload_left: usize,
    /// The newest stream whose HEADERS came by.
    newest_stream: u32,
    /// Set at the shutdown PING's ack: streams above it are ignored by h2.
    ignored_above: Option<u32>,
}

impl IgnoredStreams {
    /// A reader at the start of a server connection.
    pub(crate) fn new() -> Self {
        Self { preface_left: PREFACE_LEN, ..Self::default() }
    }

    /// Reads `input`, the next bytes from the client, and appends to
    /// `out` those h2 is to get. A frame too short yet to judge stays here
    /// until the bytes that complete it come (or [`take_held`](Self::take_held)
    /// at the end).
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            let passing = if self.preface_left > 0 { &mut self.preface_left } else { &mut self.payload_left };
            if *passing > 0 {
                let take = (*passing).min(input.len());
                out.extend_from_slice(&input[..take]);
                *passing -= take;
                input = &input[take..];
                continue;
            }
            // A frame starts: its header, and a short frame's payload, are
            // gathered before it is judged.
            let wanted = if self.held.len() < HEADER_LEN { HEADER_LEN } else { HEADER_LEN + self.short_length() };
            let take = (wanted - self.held.len()).min(input.len());
            self.held.extend_from_slice(&input[..take]);
            input = &input[take..];
            if let Some(keep) = self.judge() {
                if keep {
                    out.extend_from_slice(&self.held);
                }
                self.held.clear();
            }
        }
    }

    /// Hands over the bytes held back: the client closed mid-frame.
    pub(crate) fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// The payload length of the held frame when it is one to judge whole.
    fn short_length(&self) -> usize {
        let header = &self.held[..HEADER_LEN];
        let length = (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let short = (kind == WINDOW_UPDATE && length == 4) || (kind == PING && length == 8 && flags & ACK != 0);
        if short { length } else { 0 }
    }

    /// Whether the held frame is to be passed (`Some(true)`), dropped
    /// (`Some(false)`), or needs more bytes (`None`); on a pass of a long
    /// frame, its payload's length goes to `payload_left`.
    fn judge(&mut self) -> Option<bool> {
        if self.held.len() < HEADER_LEN {
            return None;
        }
        let header = &self.held[..HEADER_LEN];
        let length = (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let kind = header[3];
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let short = self.short_length() > 0;
        if !short {
            if kind == HEADERS {
                self.newest_stream = self.newest_stream.max(stream);
            }
            self.payload_left = length;
            return Some(true);
        }
        if self.held.len() < HEADER_LEN + length {
            return None;
        }
        if kind == PING {
            if self.held[HEADER_LEN..] == SHUTDOWN_PING && self.ignored_above.is_none() {
                self.ignored_above = Some(self.newest_stream);
            }
            return Some(true);
        }
        let ignored = self.ignored_above.is_some_and(|last| stream > last);
        if ignored {
            tracing::debug!(stream, "dropped a WINDOW_UPDATE of a stream h2 ignores after its final GOAWAY");
        }
        Some(!ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = payload.len();
        let mut bytes = vec![(length >> 16) as u8, (length >> 8) as u8, length as u8, kind, flags];
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn preface() -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(0x4, 0, 0, &[]));
        bytes
    }

    fn window_update(stream: u32) -> Vec<u8> {
        frame(WINDOW_UPDATE, 0, stream, &5u32.to_be_bytes())
    }

    /// What h2 gets when the client's bytes arrive in pieces of `piece`.
    fn through(bytes: &[u8], piece: usize) -> Vec<u8> {
        let mut filter = IgnoredStreams::new();
        let mut delivered = Vec::new();
        for chunk in bytes.chunks(piece) {
            filter.feed(chunk, &mut delivered);
        }
        assert!(filter.take_held().is_empty(), "whole frames in, nothing left held");
        delivered
    }

    #[test]
    fn everything_passes_until_the_shutdown_ping_is_acked() {
        let mut bytes = preface();
        bytes.extend(frame(HEADERS, 0x4, 1, &[0x83, 0x86, 0x84]));
        bytes.extend(window_update(1));
        bytes.extend(frame(0x0, 0x1, 1, &[0; 40]));
        bytes.extend(window_update(0));
        bytes.extend(frame(PING, ACK, 0, &[1, 2, 3, 4, 5, 6, 7, 8]));
        bytes.extend(frame(HEADERS, 0x4, 3, &[0x83]));
        bytes.extend(window_update(3));
        for piece in [1, 2, 5, 9, 13, 1000] {
            assert_eq!(through(&bytes, piece), bytes, "in pieces of {piece}");
        }
    }

    #[test]
    fn after_the_ack_only_window_updates_of_newer_streams_are_dropped() {
        let mut bytes = preface();
        bytes.extend(frame(HEADERS, 0x4, 1, &[0x83]));
        bytes.extend(frame(HEADERS, 0x4, 3, &[0x83]));
        bytes.extend(frame(PING, ACK, 0, &SHUTDOWN_PING));
        let mut expected = bytes.clone();
        for kept in [window_update(3), window_update(1), window_update(0), frame(0x0, 0x1, 3, &[7; 20])] {
            bytes.extend(&kept);
            expected.extend(kept);
        }
        // Stream 5 came after the ack: h2 ignores it, and must not see this.
        let headers_5 = frame(HEADERS, 0x4, 5, &[0x83]);
        bytes.extend(&headers_5);
        expected.extend(headers_5);
        bytes.extend(window_update(5));
        let data_5 = frame(0x0, 0x1, 5, &[1; 3]);
        bytes.extend(&data_5);
        expected.extend(data_5);
        bytes.extend(window_update(7));
        for piece in [1, 3, 9, 12, 13, 14, 4096] {
            assert_eq!(through(&bytes, piece), expected, "in pieces of {piece}");
        }
    }

    #[test]
    fn a_keepalive_ping_ack_changes_nothing() {
        let mut bytes = preface();
        bytes.extend(frame(HEADERS, 0x4, 1, &[0x83]));
        bytes.extend(frame(PING, ACK, 0, &[0x3b, 0x7c, 0xdb, 0x7a, 0x0b, 0x87, 0x16, 0xb4]));
        bytes.extend(frame(HEADERS, 0x4, 3, &[0x83]));
        bytes.extend(window_update(3));
        assert_eq!(through(&bytes, 7), bytes);
    }
}
