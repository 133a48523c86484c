//! Length-prefixed frames: a big-endian `u32` payload length, then the
//! payload. The length is checked against the limit before any allocation.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{Error, Result};

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// The length prefix for a payload of `len` bytes, refusing one over `max`.
pub fn header(len: usize, max: usize) -> Result<[u8; HEADER_BYTES]> {
    match u32::try_from(len) {
        Ok(prefix) if len <= max => Ok(prefix.to_be_bytes()),
        _ => Err(Error::FrameTooLarge { len, max }),
    }
}

/// The payload length a prefix announces, refusing one over `max`.
pub fn payload_len(header: [u8; HEADER_BYTES], max: usize) -> Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(Error::FrameTooLarge { len, max });
    }
    Ok(len)
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames; an
/// end inside a frame is [`Error::TruncatedFrame`]; an oversize prefix is
/// [`Error::FrameTooLarge`] and nothing of its payload is read or allocated.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Option<Bytes>> {
    let mut prefix = [0u8; HEADER_BYTES];
    let mut got = 0;
    while got < HEADER_BYTES {
        let n = reader.read(&mut prefix[got..]).await?;
        if n == 0 {
            return match got {
                0 => Ok(None),
                _ => Err(Error::TruncatedFrame {
                    expected: HEADER_BYTES,
                    got,
                }),
            };
        }
        got += n;
    }
    let len = payload_len(prefix, max)?;
    let mut payload = BytesMut::zeroed(len);
    let mut filled = 0;
    while filled < len {
        let n = reader.read(&mut payload[filled..]).await?;
        if n == 0 {
            return Err(Error::TruncatedFrame {
                expected: len,
                got: filled,
            });
        }
        filled += n;
    }
    Ok(Some(payload.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            out.extend_from_slice(&header(p.len(), usize::MAX).unwrap());
            out.extend_from_slice(p);
        }
        out
    }

    async fn read_all(mut bytes: &[u8], max: usize) -> (Vec<Bytes>, Result<Option<Bytes>>) {
        let mut frames = Vec::new();
        loop {
            match read_frame(&mut bytes, max).await {
                Ok(Some(f)) => frames.push(f),
                other => return (frames, other),
            }
        }
    }

    #[tokio::test]
    async fn round_trips_several_frames_including_empty() {
        let wire = encode(&[b"hello", b"", &[7u8; 1000]]);
        let (frames, end) = read_all(&wire, 1000).await;
        assert_eq!(frames, vec![&b"hello"[..], &b""[..], &[7u8; 1000][..]]);
        assert!(matches!(end, Ok(None)));
    }

    #[tokio::test]
    async fn empty_stream_is_a_clean_end() {
        assert!(matches!(read_frame(&mut &b""[..], 10).await, Ok(None)));
    }

    #[tokio::test]
    async fn frame_exactly_at_the_limit_is_accepted() {
        let wire = encode(&[&[1u8; 64]]);
        let (frames, _) = read_all(&wire, 64).await;
        assert_eq!(frames.len(), 1);
    }

    #[tokio::test]
    async fn oversize_prefix_is_refused_without_reading_the_payload() {
        // Announces 4 GiB - 1 but carries nothing: must fail on the prefix,
        // not try to allocate or wait for the payload.
        let wire = [0xFF, 0xFF, 0xFF, 0xFF];
        let err = read_frame(&mut &wire[..], 1 << 20).await;
        assert!(matches!(
            err,
            Err(Error::FrameTooLarge {
                len: 0xFFFF_FFFF,
                max: 1_048_576
            })
        ));
        let wire = encode(&[&[1u8; 65]]);
        assert!(matches!(
            read_frame(&mut &wire[..], 64).await,
            Err(Error::FrameTooLarge { len: 65, max: 64 })
        ));
    }

    #[tokio::test]
    async fn truncated_prefix_and_payload_are_errors() {
        assert!(matches!(
            read_frame(&mut &[0u8, 0][..], 10).await,
            Err(Error::TruncatedFrame {
                expected: 4,
                got: 2
            })
        ));
        let mut wire = encode(&[b"abcdef"]);
        wire.truncate(7);
        assert!(matches!(
            read_frame(&mut &wire[..], 10).await,
            Err(Error::TruncatedFrame {
                expected: 6,
                got: 3
            })
        ));
    }

    #[tokio::test]
    async fn reads_frames_split_across_many_small_reads() {
        let wire = encode(&[b"split", &[9u8; 300]]);
        let (client, mut server) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut client = client;
            for chunk in wire.chunks(3) {
                client.write_all(chunk).await.unwrap();
            }
        });
        assert_eq!(
            read_frame(&mut server, 300).await.unwrap().unwrap(),
            &b"split"[..]
        );
        assert_eq!(
            read_frame(&mut server, 300).await.unwrap().unwrap().len(),
            300
        );
        writer.await.unwrap();
        assert!(matches!(read_frame(&mut server, 300).await, Ok(None)));
    }

    #[test]
    fn header_refuses_payloads_over_the_limit_or_u32() {
        assert_eq!(header(5, 5).unwrap(), [0, 0, 0, 5]);
        assert!(matches!(
            header(6, 5),
            Err(Error::FrameTooLarge { len: 6, max: 5 })
        ));
        assert!(header(u32::MAX as usize + 1, usize::MAX).is_err());
        assert_eq!(payload_len([0, 1, 0, 0], 65536).unwrap(), 65536);
        assert!(payload_len([0, 1, 0, 1], 65536).is_err());
    }
}
