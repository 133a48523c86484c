//! What the fuzz targets share: the committee fixture and a reader over the
//! fuzzer's bytes.

use std::sync::OnceLock;

use ordo_consensus::testing::Fixture;

/// Committee size of every target.
pub const N: usize = 4;

/// The committee and its keys, built once per process.
pub fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| Fixture::new(N))
}

/// The fuzzer's input, read front to back.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    /// The next byte, `None` at the end.
    pub fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    /// Up to `len` next bytes (fewer at the end).
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(len.min(self.0.len()));
        self.0 = b;
        a
    }

    /// A raw peer frame whose length is the little-endian `[a, b]`, and the
    /// byte naming its sender.
    pub fn frame(&mut self, a: u8, b: u8) -> (&'a [u8], u8) {
        let frame = self.bytes(usize::from(u16::from_le_bytes([a, b])));
        (frame, self.byte().unwrap_or(0))
    }
}
