//! Minimal lower-case hex, enough for keys and digests in config files and logs.

use crate::{Error, Result};

pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

pub(crate) fn decode_array<const N: usize>(text: &str) -> Result<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 {
        return Err(Error::InvalidHex(format!(
            "expected {} hex digits, got {}",
            N * 2,
            text.len()
        )));
    }
    let mut out = [0u8; N];
    let bytes = text.as_bytes();
    for (i, slot) in out.iter_mut().enumerate() {
        let hi = digit(bytes[2 * i])?;
        let lo = digit(bytes[2 * i + 1])?;
        *slot = (hi << 4) | lo;
    }
    Ok(out)
}

fn digit(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::InvalidHex(format!(
            "'{}' is not a hex digit",
            c as char
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(encode(&bytes), "0001abff");
        assert_eq!(decode_array::<4>("0001ABff").unwrap(), bytes);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(decode_array::<2>("abc").is_err());
        assert!(decode_array::<2>("zzzz").is_err());
    }
}
