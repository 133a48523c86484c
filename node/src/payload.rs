//! Consensus payload items are encoded batch certificates
//! ([`ordo_mempool::payload`], shared with the simulator).

pub use ordo_mempool::payload::{cert_key, decode_certs, encode_cert, CertRules, VerifiedCerts};
