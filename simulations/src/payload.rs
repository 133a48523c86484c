//! Consensus payload items are encoded batch certificates, exactly as in the
//! node: the same encoding, inclusion-list key and payload rule
//! ([`ordo_mempool::payload`]). One [`VerifiedCerts`] memo serves every host
//! of a run: whether a certificate verifies is a pure function of its bytes
//! and the committee, so sharing it changes no outcome, only the time spent.

pub use ordo_mempool::payload::{cert_key, decode_certs, encode_cert, CertRules, VerifiedCerts};
