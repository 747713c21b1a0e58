//! The bench's codec: requests encoded once and sent as bytes, answers
//! skipped unread, so the client spends its time on calls, not on protobuf.

use prost::bytes::Buf;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::Bytes,
};

/// Sends pre-encoded request bytes; skips the answer's bytes.
pub(super) struct RawCodec;
pub(super) struct RawEncoder;
pub(super) struct SkipDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = SkipDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        SkipDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for SkipDecoder {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        let remaining = src.remaining();
        src.advance(remaining);
        Ok(Some(()))
    }
}
