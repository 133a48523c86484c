//! The committee: who the sequencer nodes are, where to reach them, and the
//! fault-tolerance thresholds that follow from their number.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::crypto::{verify_with, Scheme};
use crate::{Digest, Error, PublicKey, Result, Signature};

/// Position of a member in the committee; messages name signers by it.
pub type NodeIndex = u16;

/// One sequencer node of the committee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The node's ed25519 committee key; its TLS certificate carries it too.
    pub key: PublicKey,
    /// Where peers reach its QUIC endpoint.
    pub address: SocketAddr,
    /// Where clients reach its HTTP API.
    pub api_address: SocketAddr,
}

/// An ordered set of members with distinct keys, `n >= 1`.
///
/// With `f = ⌊(n-1)/3⌋`, a quorum is `n - f` members (any two quorums share
/// an honest member) and `f + 1` members always include an honest one.
#[derive(Clone, Debug)]
pub struct Committee {
    members: Vec<Member>,
    verifying: Vec<VerifyingKey>,
    index: HashMap<PublicKey, NodeIndex>,
    digest: Digest,
    scheme: Scheme,
}

#[derive(Serialize, Deserialize)]
struct CommitteeFile {
    members: Vec<MemberFile>,
}

#[derive(Serialize, Deserialize)]
struct MemberFile {
    key: String,
    address: String,
    api_address: String,
}

impl Committee {
    /// Builds a committee, refusing an empty one, duplicate keys and keys
    /// that are not valid curve points.
    pub fn new(members: Vec<Member>) -> Result<Self> {
        if members.is_empty() {
            return Err(Error::EmptyCommittee);
        }
        if members.len() > usize::from(u16::MAX) {
            return Err(Error::CommitteeTooLarge(members.len()));
        }
        let mut index = HashMap::with_capacity(members.len());
        let mut verifying = Vec::with_capacity(members.len());
        let mut hasher = Digest::hasher("ordo-committee");
        for (i, member) in members.iter().enumerate() {
            if index.insert(member.key, i as NodeIndex).is_some() {
                return Err(Error::DuplicateKey(member.key.to_hex()));
            }
            verifying.push(member.key.verifying_key()?);
            hasher.update(&member.key.0);
        }
        Ok(Committee {
            members,
            verifying,
            index,
            digest: hasher.finalize(),
            scheme: Scheme::Ed25519,
        })
    }

    /// Parses the TOML committee file format:
    ///
    /// ```toml
    /// [[members]]
    /// key = "<64 hex digits>"
    /// address = "127.0.0.1:7000"
    /// api_address = "127.0.0.1:8000"
    /// ```
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let toml_error = |message: String| Error::Toml {
            path: origin.to_path_buf(),
            message,
        };
        let file: CommitteeFile =
            toml::from_str(text).map_err(|e| toml_error(e.message().to_string()))?;
        let mut members = Vec::with_capacity(file.members.len());
        for (i, m) in file.members.into_iter().enumerate() {
            let key = PublicKey::from_hex(&m.key)
                .map_err(|e| toml_error(format!("member {i}: key: {e}")))?;
            let address = m
                .address
                .parse()
                .map_err(|e| toml_error(format!("member {i}: address '{}': {e}", m.address)))?;
            let api_address = m.api_address.parse().map_err(|e| {
                toml_error(format!("member {i}: api_address '{}': {e}", m.api_address))
            })?;
            members.push(Member {
                key,
                address,
                api_address,
            });
        }
        Committee::new(members).map_err(|e| toml_error(e.to_string()))
    }

    /// Reads and parses a committee file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The committee in the TOML file format.
    pub fn to_toml(&self) -> String {
        let file = CommitteeFile {
            members: self
                .members
                .iter()
                .map(|m| MemberFile {
                    key: m.key.to_hex(),
                    address: m.address.to_string(),
                    api_address: m.api_address.to_string(),
                })
                .collect(),
        };
        // Serializing plain strings into TOML cannot fail.
        toml::to_string(&file).unwrap_or_default()
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// The number of Byzantine members tolerated: `⌊(n-1)/3⌋`.
    pub fn f(&self) -> usize {
        (self.size() - 1) / 3
    }

    /// Votes needed for a certificate: `n - f`.
    pub fn quorum(&self) -> usize {
        self.size() - self.f()
    }

    /// Members that always include an honest one: `f + 1`.
    pub fn validity(&self) -> usize {
        self.f() + 1
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, index: NodeIndex) -> Option<&Member> {
        self.members.get(usize::from(index))
    }

    pub fn key(&self, index: NodeIndex) -> Option<PublicKey> {
        self.member(index).map(|m| m.key)
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<NodeIndex> {
        self.index.get(key).copied()
    }

    pub fn verifying_key(&self, index: NodeIndex) -> Option<&VerifyingKey> {
        self.verifying.get(usize::from(index))
    }

    /// Indices `0..n`.
    pub fn indices(&self) -> impl Iterator<Item = NodeIndex> {
        0..self.size() as NodeIndex
    }

    /// A digest of the member keys in order: names this committee.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The signature scheme this committee checks.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Verifies a signature by member `index`.
    pub fn verify(&self, index: NodeIndex, message: &[u8], signature: &Signature) -> Result<()> {
        let key = self.verifying_key(index).ok_or(Error::InvalidSignature)?;
        match self.scheme {
            Scheme::Ed25519 => verify_with(key, message, signature),
            Scheme::InsecureSimulated => {
                let public = self.members[usize::from(index)].key;
                if Scheme::simulated_signature(&public, message) == *signature {
                    Ok(())
                } else {
                    Err(Error::InvalidSignature)
                }
            }
        }
    }

    /// Verifies signatures by several members at once; `Err` if any is bad
    /// or any index is not a member.
    pub fn verify_many(&self, items: &[(NodeIndex, &[u8], Signature)]) -> Result<()> {
        if self.scheme == Scheme::InsecureSimulated {
            return items.iter().try_for_each(|(index, message, signature)| {
                self.verify(*index, message, signature)
            });
        }
        let mut messages = Vec::with_capacity(items.len());
        let mut signatures = Vec::with_capacity(items.len());
        let mut keys = Vec::with_capacity(items.len());
        for (index, message, signature) in items {
            keys.push(*self.verifying_key(*index).ok_or(Error::InvalidSignature)?);
            messages.push(*message);
            signatures.push(*signature);
        }
        crate::verify_batch(&messages, &signatures, &keys)
    }

    /// The same committee under the insecure simulated signature scheme
    /// (see [`Scheme::InsecureSimulated`]): for the simulator only.
    pub fn insecure_simulated(mut self) -> Self {
        self.scheme = Scheme::InsecureSimulated;
        self
    }

    /// A committee of `n` deterministic keys on loopback addresses, for
    /// tests and simulations. Returns the committee and the keypairs.
    pub fn for_testing(n: usize) -> (Committee, Vec<crate::Keypair>) {
        let keys: Vec<crate::Keypair> = (0..n)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                crate::Keypair::from_seed(seed)
            })
            .collect();
        let members = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                key: k.public(),
                address: SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16)),
                api_address: SocketAddr::from(([127, 0, 0, 1], 30_000 + i as u16)),
            })
            .collect();
        // Deterministic seeds give distinct valid keys.
        let committee = match Committee::new(members) {
            Ok(c) => c,
            Err(e) => panic!("test committee: {e}"),
        };
        (committee, keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_for_every_size() {
        // (n, f, quorum, validity)
        let table = [
            (1, 0, 1, 1),
            (2, 0, 2, 1),
            (3, 0, 3, 1),
            (4, 1, 3, 2),
            (5, 1, 4, 2),
            (7, 2, 5, 3),
            (10, 3, 7, 4),
            (100, 33, 67, 34),
        ];
        for (n, f, quorum, validity) in table {
            let (c, _) = Committee::for_testing(n);
            assert_eq!(
                (c.f(), c.quorum(), c.validity()),
                (f, quorum, validity),
                "n = {n}"
            );
            // Two quorums intersect in at least f + 1 members.
            assert!(2 * c.quorum() > n + c.f(), "n = {n}");
        }
    }

    #[test]
    fn rejects_empty_and_duplicates() {
        assert!(matches!(Committee::new(vec![]), Err(Error::EmptyCommittee)));
        let (c, _) = Committee::for_testing(2);
        let mut members = c.members().to_vec();
        members[1].key = members[0].key;
        assert!(matches!(
            Committee::new(members),
            Err(Error::DuplicateKey(_))
        ));
    }

    #[test]
    fn toml_round_trip() {
        let (c, _) = Committee::for_testing(4);
        let text = c.to_toml();
        let back = Committee::from_toml(&text, Path::new("committee.toml")).unwrap();
        assert_eq!(back.members(), c.members());
        assert_eq!(back.digest(), c.digest());
    }

    #[test]
    fn toml_errors_name_the_problem() {
        let (c, _) = Committee::for_testing(2);
        let text = c.to_toml().replace("127.0.0.1:20001", "not-an-address");
        let err = Committee::from_toml(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("member 1") && err.contains("not-an-address"),
            "{err}"
        );

        let dup = c
            .to_toml()
            .replace(&c.members()[1].key.to_hex(), &c.members()[0].key.to_hex());
        let err = Committee::from_toml(&dup, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than once"), "{err}");

        let err = Committee::from_toml("members = []", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn simulated_scheme_detects_wrong_signer_and_message() {
        let (c, keys) = Committee::for_testing(4);
        let c = c.insecure_simulated();
        let keys: Vec<_> = keys.into_iter().map(|k| k.insecure_simulated()).collect();
        let sig = keys[1].sign(b"m");
        assert!(c.verify(1, b"m", &sig).is_ok());
        assert!(c.verify(2, b"m", &sig).is_err());
        assert!(c.verify(1, b"n", &sig).is_err());
        let items = [
            (1, b"m".as_slice(), sig),
            (2, b"m".as_slice(), keys[2].sign(b"m")),
        ];
        assert!(c.verify_many(&items).is_ok());
        // Real committees refuse simulated signatures.
        let (real, _) = Committee::for_testing(4);
        assert!(real.verify(1, b"m", &sig).is_err());
    }

    #[test]
    fn verify_many_checks_membership() {
        let (c, keys) = Committee::for_testing(4);
        let msg = b"m".as_slice();
        let items: Vec<(NodeIndex, &[u8], Signature)> = (0..3)
            .map(|i| (i as NodeIndex, msg, keys[i].sign(msg)))
            .collect();
        assert!(c.verify_many(&items).is_ok());
        let mut bad = items.clone();
        bad[0].0 = 9;
        assert!(c.verify_many(&bad).is_err());
    }
}
