//! ed25519 keys and signatures (ed25519-dalek), with batch verification.
//!
//! [`PublicKey`] and [`Signature`] are plain byte arrays so they hash, order
//! and encode cheaply; a [`crate::Committee`] keeps the decompressed keys it
//! verifies with.
//!
//! **One acceptance criterion.** Signatures are made by ed25519-dalek
//! (RFC 8032) and checked by [`verify_with`] (one) and [`verify_batch`]
//! (many) under the same rule, the *cofactored* equation (as in ZIP-215 and
//! Chalkias et al., "Taming the many EdDSAs", 2020): with `A` the signer's
//! key, `R` the first 32 signature bytes, `s` the last 32 and `M` the
//! message, a signature is valid iff
//!
//! - `s` is a canonical scalar (`s < ℓ`),
//! - `R` decompresses to a curve point,
//! - `[8]([s]B − R − [k]A)` is the identity, with
//!   `k = SHA-512(R ‖ A ‖ M) mod ℓ` over the bytes as given.
//!
//! Batch verification checks `[8](Σ zᵢ([sᵢ]B − Rᵢ − [kᵢ]Aᵢ)) = 0` with
//! 128-bit weights `zᵢ` drawn from a hash of every input, which holds iff
//! every signature satisfies the single equation (except with probability
//! about 2⁻¹²⁸). So a signature is judged the same whether it is checked
//! alone, in a batch, or in a batch of other signatures: every node accepts
//! the same certificates and blames the same signers. (ed25519-dalek's own
//! `verify_batch` is cofactorless: for an `R` with a small-order component
//! its answer depends on the weights, that is on the rest of the batch, and
//! it accepts signatures its `verify_strict` rejects.) Keys of small order
//! are refused when a key is loaded ([`PublicKey::verifying_key`]): under a
//! cofactored rule anyone could sign for them.

use std::fmt;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha512};

use crate::{Error, Result};

/// An ed25519 public key, 32 bytes (compressed Edwards point).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The decompressed key; fails for bytes that are not a curve point and
    /// for points of small order (weak keys, for which anyone could make a
    /// signature that passes the cofactored check).
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        let key =
            VerifyingKey::from_bytes(&self.0).map_err(|e| Error::InvalidKey(e.to_string()))?;
        if key.is_weak() {
            return Err(Error::InvalidKey("a point of small order".into()));
        }
        Ok(key)
    }

    /// Verifies `signature` over `message` under the module's cofactored
    /// rule (see the module documentation).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        verify_with(&self.verifying_key()?, message, signature)
    }

    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self> {
        let key = PublicKey(crate::hex::decode_array(text)?);
        key.verifying_key()?;
        Ok(key)
    }
}

/// A signature taken apart: `R` decompressed, `s` canonical, and the
/// challenge `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
struct Parts {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Parts {
    fn of(key: &VerifyingKey, message: &[u8], signature: &Signature) -> Result<Parts> {
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature.0[..32]);
        s_bytes.copy_from_slice(&signature.0[32..]);
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
            .ok_or(Error::InvalidSignature)?;
        let r = CompressedEdwardsY(r_bytes)
            .decompress()
            .ok_or(Error::InvalidSignature)?;
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(key.as_bytes());
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        Ok(Parts { r, s, k })
    }
}

/// Verifies one signature with an already decompressed key: the cofactored
/// equation `[8]([s]B − R − [k]A) = 0` (see the module documentation), the
/// same rule [`verify_batch`] applies.
pub fn verify_with(key: &VerifyingKey, message: &[u8], signature: &Signature) -> Result<()> {
    let Parts { r, s, k } = Parts::of(key, message, signature)?;
    let a = key.to_edwards();
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s) - r;
    if check.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(Error::InvalidSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for PublicKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        PublicKey::from_hex(text)
    }
}

/// An ed25519 signature, 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// An all-zero signature: never valid, handy as a placeholder in tests
    /// and for the genesis block, which nobody signs.
    pub const ZERO: Signature = Signature([0; 64]);
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &crate::hex::encode(&self.0[..6]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Signature;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }

            fn visit_bytes<E: serde::de::Error>(
                self,
                v: &[u8],
            ) -> std::result::Result<Signature, E> {
                let bytes: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(bytes))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Signature, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, slot) in bytes.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A node's signing key. Never serialized by serde: key files go through
/// [`Keypair::to_secret_hex`] so a secret is only written where asked.
pub struct Keypair {
    signing: SigningKey,
    public: PublicKey,
    scheme: Scheme,
}

/// How signatures are made and checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheme {
    /// ed25519: what every real node uses.
    #[default]
    Ed25519,
    /// **Simulation only.** A "signature" is a keyed blake3 hash of the
    /// public key and the message: about a hundred times cheaper than
    /// ed25519 and detects any corrupted or misattributed signature, but
    /// anyone who knows the public key can forge it. The deterministic
    /// simulator uses it so thousands of views run per wall-second; no
    /// configuration of the node can select it.
    InsecureSimulated,
}

impl Scheme {
    pub(crate) fn simulated_signature(key: &PublicKey, message: &[u8]) -> Signature {
        let mut hasher = blake3::Hasher::new_keyed(&key.0);
        hasher.update(b"ordo-simulated-signature");
        hasher.update(message);
        let mut out = [0u8; 64];
        hasher.finalize_xof().fill(&mut out);
        Signature(out)
    }
}

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| Error::InvalidKey(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// A key from a 32-byte seed: deterministic, for tests and simulations.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let public = PublicKey(signing.verifying_key().to_bytes());
        Keypair {
            signing,
            public,
            scheme: Scheme::Ed25519,
        }
    }

    /// The same key under the insecure simulated scheme (see
    /// [`Scheme::InsecureSimulated`]): for the simulator only.
    pub fn insecure_simulated(mut self) -> Self {
        self.scheme = Scheme::InsecureSimulated;
        self
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        match self.scheme {
            Scheme::Ed25519 => Signature(self.signing.sign(message).to_bytes()),
            Scheme::InsecureSimulated => Scheme::simulated_signature(&self.public, message),
        }
    }

    /// The 32-byte seed, for key files.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn to_secret_hex(&self) -> String {
        crate::hex::encode(&self.signing.to_bytes())
    }

    pub fn from_secret_hex(text: &str) -> Result<Self> {
        crate::hex::decode_array(text).map(Self::from_seed)
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair {
            scheme: self.scheme,
            ..Keypair::from_seed(self.seed())
        }
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public)
    }
}

/// Verifies many `(message, signature, key)` triples at once, under the
/// same cofactored rule as [`verify_with`]: `Ok` iff every triple would pass
/// [`verify_with`] (up to a 2⁻¹²⁸ chance). Roughly twice as fast as one by
/// one for large batches; on failure it does not say which triple was bad,
/// so callers that need to blame a signer fall back to [`verify_with`].
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> Result<()> {
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        return Err(Error::InvalidSignature);
    }
    match messages.len() {
        0 => return Ok(()),
        1 => return verify_with(&keys[0], messages[0], &signatures[0]),
        _ => {}
    }
    let parts = keys
        .iter()
        .zip(messages)
        .zip(signatures)
        .map(|((key, message), signature)| Parts::of(key, message, signature))
        .collect::<Result<Vec<Parts>>>()?;
    // Weights from a hash of everything verified (each `k` covers R, A and
    // M; `s` is added): nobody can pick signatures that cancel out without
    // breaking the hash.
    let mut transcript = blake3::Hasher::new();
    transcript.update(b"ordo-ed25519-batch-weights");
    transcript.update(&(parts.len() as u64).to_le_bytes());
    for p in &parts {
        transcript.update(p.k.as_bytes());
        transcript.update(p.s.as_bytes());
    }
    let mut weights_stream = transcript.finalize_xof();
    let weights: Vec<Scalar> = parts
        .iter()
        .map(|_| {
            let mut z = [0u8; 16];
            weights_stream.fill(&mut z);
            Scalar::from(u128::from_le_bytes(z))
        })
        .collect();
    // [−Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ, times the cofactor, must vanish.
    let b_coefficient: Scalar = parts.iter().zip(&weights).map(|(p, z)| z * p.s).sum();
    let scalars = std::iter::once(-b_coefficient)
        .chain(weights.iter().copied())
        .chain(parts.iter().zip(&weights).map(|(p, z)| z * p.k));
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(parts.iter().map(|p| p.r))
        .chain(keys.iter().map(VerifyingKey::to_edwards));
    let sum = EdwardsPoint::vartime_multiscalar_mul(scalars, points);
    if sum.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(Error::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Keypair {
        Keypair::from_seed([i; 32])
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig).is_ok());
        assert!(k.public().verify(b"hellO", &sig).is_err());
        assert!(key(2).public().verify(b"hello", &sig).is_err());
    }

    #[test]
    fn batch_detects_one_bad_signature() {
        let keys: Vec<Keypair> = (0..8).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let vks: Vec<VerifyingKey> = keys
            .iter()
            .map(|k| k.public().verifying_key().unwrap())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        assert!(verify_batch(&refs, &sigs, &vks).is_ok());
        sigs[5] = keys[5].sign(b"other");
        assert!(verify_batch(&refs, &sigs, &vks).is_err());
        assert!(verify_batch(&refs[..3], &sigs, &vks).is_err());
    }

    /// A key pair by hand: secret scalar `a`, public `A = [a]B`.
    fn raw_key(seed: u8) -> (Scalar, PublicKey, VerifyingKey) {
        let a = Scalar::from_bytes_mod_order([seed; 32]);
        let public = PublicKey(EdwardsPoint::mul_base(&a).compress().to_bytes());
        let vk = public.verifying_key().unwrap();
        (a, public, vk)
    }

    /// Signs by hand with nonce point `R = [r]B + extra` written as
    /// `r_bytes` (its canonical encoding unless given): what a signer that
    /// knows `a` can produce beyond RFC 8032.
    fn raw_sign(
        a: Scalar,
        public: &PublicKey,
        r: Scalar,
        extra: EdwardsPoint,
        r_bytes: Option<[u8; 32]>,
        message: &[u8],
    ) -> Signature {
        let point = EdwardsPoint::mul_base(&r) + extra;
        let r_bytes = r_bytes.unwrap_or(point.compress().to_bytes());
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(public.0);
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r_bytes);
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature(bytes)
    }

    /// `s + ℓ`: the same scalar, written non-canonically.
    fn non_canonical_s(signature: &Signature) -> Signature {
        const ELL: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = *signature;
        let mut carry = 0u16;
        for (byte, add) in out.0[32..].iter_mut().zip(ELL) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    /// The verdict of every path on one signature: alone, as a batch of
    /// one, and in a batch with three good signatures (before and after).
    fn verdicts(vk: &VerifyingKey, message: &[u8], signature: &Signature) -> [bool; 4] {
        let others: Vec<Keypair> = (10..13).map(key).collect();
        let other_msgs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 5]).collect();
        let mut msgs: Vec<&[u8]> = other_msgs.iter().map(Vec::as_slice).collect();
        let mut sigs: Vec<Signature> = others
            .iter()
            .zip(&other_msgs)
            .map(|(k, m)| k.sign(m))
            .collect();
        let mut keys: Vec<VerifyingKey> = others
            .iter()
            .map(|k| k.public().verifying_key().unwrap())
            .collect();
        let alone = verify_with(vk, message, signature).is_ok();
        let one = verify_batch(&[message], &[*signature], &[*vk]).is_ok();
        msgs.push(message);
        sigs.push(*signature);
        keys.push(*vk);
        let last = verify_batch(&msgs, &sigs, &keys).is_ok();
        msgs.rotate_right(1);
        sigs.rotate_right(1);
        keys.rotate_right(1);
        let first = verify_batch(&msgs, &sigs, &keys).is_ok();
        [alone, one, last, first]
    }

    /// Every path gives the same verdict, including on signatures that
    /// ed25519-dalek's `verify_strict` and its (cofactorless) batch check
    /// judge differently.
    #[test]
    fn single_and_batch_agree_on_edge_cases() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::traits::Identity;

        let (a, public, vk) = raw_key(5);
        let message = b"vote for block 7";
        let r = Scalar::from_bytes_mod_order([9; 32]);
        let honest = raw_sign(a, &public, r, EdwardsPoint::identity(), None, message);
        // R with a component of order 8: passes the cofactored equation,
        // fails `verify_strict`; dalek's batch accepted it for some weights.
        let torsion = raw_sign(a, &public, r, EIGHT_TORSION[1], None, message);
        // R the identity (small order), s = k·a.
        let zero_r = raw_sign(
            a,
            &public,
            Scalar::ZERO,
            EdwardsPoint::identity(),
            None,
            message,
        );
        // R the identity written non-canonically (y = p + 1).
        let mut y_p_plus_1 = [0xffu8; 32];
        y_p_plus_1[0] = 0xee;
        y_p_plus_1[31] = 0x7f;
        let non_canonical_r = raw_sign(
            a,
            &public,
            Scalar::ZERO,
            EdwardsPoint::identity(),
            Some(y_p_plus_1),
            message,
        );
        let mut not_a_point = honest;
        not_a_point.0[..32].copy_from_slice(&[0xff; 32]);
        let (_, _, other_vk) = raw_key(6);

        let strict = |sig: &Signature| {
            vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig.0))
                .is_ok()
        };
        assert!(strict(&honest) && !strict(&torsion) && !strict(&zero_r));

        let table: Vec<(&str, &VerifyingKey, &[u8], Signature, bool)> = vec![
            ("RFC 8032 signature", &vk, message, honest, true),
            ("other message", &vk, b"vote for block 8", honest, false),
            ("other key", &other_vk, message, honest, false),
            (
                "s not canonical",
                &vk,
                message,
                non_canonical_s(&honest),
                false,
            ),
            ("R not a point", &vk, message, not_a_point, false),
            ("R with an order-8 component", &vk, message, torsion, true),
            ("R the identity", &vk, message, zero_r, true),
            (
                "R the identity, non-canonical",
                &vk,
                message,
                non_canonical_r,
                true,
            ),
            ("zero signature", &vk, message, Signature::ZERO, false),
        ];
        for (name, vk, message, signature, valid) in table {
            assert_eq!(verdicts(vk, message, &signature), [valid; 4], "{name}");
        }
        // The order-8 component in every position of the torsion subgroup.
        for t in EIGHT_TORSION {
            let sig = raw_sign(a, &public, r, t, None, message);
            assert_eq!(verdicts(&vk, message, &sig), [true; 4]);
        }
    }

    proptest::proptest! {
        /// A good signature with bytes changed: every path agrees.
        #[test]
        fn single_and_batch_agree_on_mutations(
            seed: u8,
            flips in proptest::collection::vec((0usize..64, 1u8..=255), 0..3),
        ) {
            let k = key(seed);
            let message = [seed; 12];
            let mut signature = k.sign(&message);
            for (at, x) in &flips {
                signature.0[*at] ^= x;
            }
            let vk = k.public().verifying_key().unwrap();
            let v = verdicts(&vk, &message, &signature);
            proptest::prop_assert!(v == [v[0]; 4], "{:?}", v);
            proptest::prop_assert_eq!(v[0], flips.is_empty());
        }
    }

    #[test]
    fn weak_keys_are_refused() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        for t in EIGHT_TORSION {
            let weak = PublicKey(t.compress().to_bytes());
            assert!(weak.verifying_key().is_err(), "{weak:?}");
            assert!(PublicKey::from_hex(&weak.to_hex()).is_err());
        }
        assert!(key(1).public().verifying_key().is_ok());
    }

    #[test]
    fn secret_hex_round_trip() {
        let k = key(7);
        let back = Keypair::from_secret_hex(&k.to_secret_hex()).unwrap();
        assert_eq!(back.public(), k.public());
    }

    #[test]
    fn public_key_hex_rejects_non_points() {
        // Not every 32-byte string decompresses to a curve point.
        let bad = (0u8..=255)
            .map(|b| crate::hex::encode(&[b; 32]))
            .find(|h| PublicKey::from_hex(h).is_err());
        assert!(bad.is_some());
    }
}
