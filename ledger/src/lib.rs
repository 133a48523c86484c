//! The `ledger` reference rollup: accounts with balances and nonces, moved
//! by ed25519-signed transfers. A pure, deterministic state machine: the
//! same sequence of transactions gives the same state and the same state
//! root on every machine.
//!
//! A transaction is a [`Transfer`] encoded with `ordo_types::codec::encode`
//! (bincode). It is applied when:
//! - it decodes, and its signature by `from` over [`Transfer::signing_digest`]
//!   verifies (strict ed25519);
//! - `nonce` equals the sender's account nonce (0 for a new account);
//! - the sender's balance covers `amount`, and the receiver's balance does
//!   not overflow.
//!
//! Otherwise it is rejected with a [`Rejection`]: recorded, state unchanged.
//! An applied transfer increments the sender's nonce, so the same signed
//! transfer can never apply twice (replay protection).
//!
//! The state root is blake3 (domain `ordo-ledger-state-v1`) over the
//! account count, then each account in key order: key, balance, nonce.

use std::collections::BTreeMap;

use ordo_types::{Digest, Keypair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

/// Domain of the digest a transfer's signature covers.
pub const TRANSFER_DOMAIN: &str = "ordo-ledger-transfer-v1";
/// Domain of the state root.
pub const STATE_DOMAIN: &str = "ordo-ledger-state-v1";

/// Errors of the ledger crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Codec(#[from] ordo_types::Error),
    #[error("block {got} does not follow the ledger height {height}")]
    OutOfOrder { height: u64, got: u64 },
    #[error("genesis lists account {0} twice")]
    DuplicateGenesis(PublicKey),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A signed transfer of `amount` from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: PublicKey,
    pub to: PublicKey,
    pub amount: u64,
    pub nonce: u64,
    /// By `from`, over [`Transfer::signing_digest`].
    pub signature: Signature,
}

impl Transfer {
    /// What the signature covers: blake3 with domain
    /// [`TRANSFER_DOMAIN`] over from, to, amount (u64 LE), nonce (u64 LE).
    pub fn signing_digest(from: &PublicKey, to: &PublicKey, amount: u64, nonce: u64) -> Digest {
        Digest::hasher(TRANSFER_DOMAIN)
            .update(&from.0)
            .update(&to.0)
            .update_u64(amount)
            .update_u64(nonce)
            .finalize()
    }

    /// A transfer signed by `from`.
    pub fn sign(from: &Keypair, to: PublicKey, amount: u64, nonce: u64) -> Self {
        let public = from.public();
        let digest = Self::signing_digest(&public, &to, amount, nonce);
        Transfer {
            from: public,
            to,
            amount,
            nonce,
            signature: from.sign(digest.as_bytes()),
        }
    }

    /// The transaction bytes to submit.
    pub fn encode(&self) -> Result<Vec<u8>> {
        Ok(ordo_types::codec::encode(self)?)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(ordo_types::codec::decode(bytes)?)
    }

    fn verify(&self) -> bool {
        let digest = Self::signing_digest(&self.from, &self.to, self.amount, self.nonce);
        self.from.verify(digest.as_bytes(), &self.signature).is_ok()
    }
}

/// One account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub nonce: u64,
}

/// Why a transaction was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// The bytes are not a `Transfer`.
    Malformed,
    BadSignature,
    WrongNonce {
        expected: u64,
        got: u64,
    },
    InsufficientBalance {
        balance: u64,
        amount: u64,
    },
    /// The receiver's balance would exceed `u64::MAX`.
    Overflow,
}

/// What applying one block did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    pub height: u64,
    /// State root after the block.
    pub root: Digest,
    pub applied: u64,
    /// `(index among the block's ledger transactions, why)`.
    pub rejected: Vec<(u32, Rejection)>,
    /// Accounts the block changed, with their new state (to persist).
    pub touched: Vec<(PublicKey, Account)>,
}

/// The deterministic test key `index` (for local clusters and tests: its
/// secret is public knowledge).
pub fn dev_keypair(index: u64) -> Keypair {
    let digest = Digest::hasher("ordo-ledger-dev-key")
        .update_u64(index)
        .finalize();
    Keypair::from_seed(digest.0)
}

/// The ledger state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    accounts: BTreeMap<PublicKey, Account>,
    height: u64,
    root: Digest,
}

impl Ledger {
    /// The state before height 1: `genesis` balances, nonces 0.
    pub fn genesis(genesis: &[(PublicKey, u64)]) -> Result<Self> {
        let mut accounts = BTreeMap::new();
        for (key, balance) in genesis {
            let account = Account {
                balance: *balance,
                nonce: 0,
            };
            if accounts.insert(*key, account).is_some() {
                return Err(Error::DuplicateGenesis(*key));
            }
        }
        Ok(Self::restore(accounts, 0))
    }

    /// A state saved at `height` (accounts as persisted).
    pub fn restore(accounts: BTreeMap<PublicKey, Account>, height: u64) -> Self {
        let root = state_root(&accounts);
        Ledger {
            accounts,
            height,
            root,
        }
    }

    /// Height of the last applied block (0: genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn root(&self) -> Digest {
        self.root
    }

    pub fn account(&self, key: &PublicKey) -> Account {
        self.accounts.get(key).copied().unwrap_or_default()
    }

    pub fn accounts(&self) -> &BTreeMap<PublicKey, Account> {
        &self.accounts
    }

    /// Sum of all balances (constant: transfers only move value).
    pub fn total_supply(&self) -> u128 {
        self.accounts.values().map(|a| u128::from(a.balance)).sum()
    }

    /// Applies block `height` (must be `self.height() + 1`): its ledger
    /// transactions in order.
    pub fn apply_block<'a>(
        &mut self,
        height: u64,
        txs: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<BlockOutcome> {
        if height != self.height + 1 {
            return Err(Error::OutOfOrder {
                height: self.height,
                got: height,
            });
        }
        let mut outcome = BlockOutcome {
            height,
            ..BlockOutcome::default()
        };
        let mut touched = BTreeMap::new();
        for (i, bytes) in txs.into_iter().enumerate() {
            match self.apply_tx(bytes) {
                Ok((from, to)) => {
                    outcome.applied += 1;
                    touched.insert(from, self.account(&from));
                    touched.insert(to, self.account(&to));
                }
                Err(why) => outcome.rejected.push((i as u32, why)),
            }
        }
        if !touched.is_empty() {
            self.root = state_root(&self.accounts);
        }
        self.height = height;
        outcome.root = self.root;
        outcome.touched = touched.into_iter().collect();
        Ok(outcome)
    }

    /// Applies one transaction or says why not; state changes only on Ok.
    pub fn apply_tx(&mut self, bytes: &[u8]) -> Result<(PublicKey, PublicKey), Rejection> {
        let tx = Transfer::decode(bytes).map_err(|_| Rejection::Malformed)?;
        if !tx.verify() {
            return Err(Rejection::BadSignature);
        }
        let sender = self.account(&tx.from);
        if tx.nonce != sender.nonce {
            return Err(Rejection::WrongNonce {
                expected: sender.nonce,
                got: tx.nonce,
            });
        }
        if sender.balance < tx.amount {
            return Err(Rejection::InsufficientBalance {
                balance: sender.balance,
                amount: tx.amount,
            });
        }
        let nonce = sender.nonce.checked_add(1).ok_or(Rejection::Overflow)?;
        if tx.from == tx.to {
            self.accounts.insert(
                tx.from,
                Account {
                    balance: sender.balance,
                    nonce,
                },
            );
            return Ok((tx.from, tx.to));
        }
        let receiver = self.account(&tx.to);
        let credited = receiver
            .balance
            .checked_add(tx.amount)
            .ok_or(Rejection::Overflow)?;
        self.accounts.insert(
            tx.from,
            Account {
                balance: sender.balance - tx.amount,
                nonce,
            },
        );
        self.accounts.insert(
            tx.to,
            Account {
                balance: credited,
                nonce: receiver.nonce,
            },
        );
        Ok((tx.from, tx.to))
    }
}

/// The state root of `accounts`.
pub fn state_root(accounts: &BTreeMap<PublicKey, Account>) -> Digest {
    let mut hasher = Digest::hasher(STATE_DOMAIN);
    hasher.update_u64(accounts.len() as u64);
    for (key, account) in accounts {
        hasher
            .update(&key.0)
            .update_u64(account.balance)
            .update_u64(account.nonce);
    }
    hasher.finalize()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn setup() -> (Keypair, Keypair, Ledger) {
        let (a, b) = (dev_keypair(0), dev_keypair(1));
        let ledger = Ledger::genesis(&[(a.public(), 100), (b.public(), 5)]).unwrap();
        (a, b, ledger)
    }

    fn tx(from: &Keypair, to: &Keypair, amount: u64, nonce: u64) -> Vec<u8> {
        Transfer::sign(from, to.public(), amount, nonce)
            .encode()
            .unwrap()
    }

    #[test]
    fn valid_transfer_moves_value_and_bumps_the_nonce() {
        let (a, b, mut l) = setup();
        let before = l.root();
        let t = tx(&a, &b, 30, 0);
        let out = l.apply_block(1, [t.as_slice()]).unwrap();
        assert_eq!(out.applied, 1);
        assert!(out.rejected.is_empty());
        assert_eq!(
            l.account(&a.public()),
            Account {
                balance: 70,
                nonce: 1
            }
        );
        assert_eq!(
            l.account(&b.public()),
            Account {
                balance: 35,
                nonce: 0
            }
        );
        assert_ne!(out.root, before);
        assert_eq!(out.root, state_root(l.accounts()));
        assert_eq!(out.touched.len(), 2);
        assert_eq!(l.total_supply(), 105);
    }

    #[test]
    fn bad_signature_is_rejected_without_change() {
        let (a, b, mut l) = setup();
        let mut t = Transfer::sign(&a, b.public(), 1, 0);
        t.amount = 2; // signed for 1
        let bytes = t.encode().unwrap();
        let before = l.clone();
        let out = l.apply_block(1, [bytes.as_slice()]).unwrap();
        assert_eq!(out.rejected, vec![(0, Rejection::BadSignature)]);
        assert_eq!(l.accounts(), before.accounts());
        assert_eq!(out.root, before.root());
        // Signed by the wrong key.
        let mut forged = Transfer::sign(&b, b.public(), 1, 0);
        forged.from = a.public();
        let bytes = forged.encode().unwrap();
        assert_eq!(l.apply_tx(&bytes), Err(Rejection::BadSignature));
        assert_eq!(l.apply_tx(b"junk"), Err(Rejection::Malformed));
    }

    #[test]
    fn wrong_nonce_is_rejected() {
        let (a, b, mut l) = setup();
        assert_eq!(
            l.apply_tx(&tx(&a, &b, 1, 1)),
            Err(Rejection::WrongNonce {
                expected: 0,
                got: 1
            })
        );
        assert!(l.apply_tx(&tx(&a, &b, 1, 0)).is_ok());
        assert!(l.apply_tx(&tx(&a, &b, 1, 0)).is_err());
        assert!(l.apply_tx(&tx(&a, &b, 1, 1)).is_ok());
    }

    #[test]
    fn insufficient_balance_is_rejected() {
        let (a, b, mut l) = setup();
        assert_eq!(
            l.apply_tx(&tx(&b, &a, 6, 0)),
            Err(Rejection::InsufficientBalance {
                balance: 5,
                amount: 6
            })
        );
        // A new account has nothing.
        let c = dev_keypair(9);
        assert!(l.apply_tx(&tx(&c, &a, 1, 0)).is_err());
        assert!(l.apply_tx(&tx(&b, &a, 5, 0)).is_ok());
        assert_eq!(l.account(&b.public()).balance, 0);
    }

    #[test]
    fn overflow_of_the_receiver_is_rejected() {
        let (a, b) = (dev_keypair(0), dev_keypair(1));
        let mut l = Ledger::genesis(&[(a.public(), 10), (b.public(), u64::MAX)]).unwrap();
        assert_eq!(l.apply_tx(&tx(&a, &b, 1, 0)), Err(Rejection::Overflow));
        assert_eq!(
            l.account(&a.public()),
            Account {
                balance: 10,
                nonce: 0
            }
        );
        // Zero moves nothing but is valid.
        assert!(l.apply_tx(&tx(&a, &b, 0, 0)).is_ok());
    }

    #[test]
    fn a_replayed_transfer_never_applies_twice() {
        let (a, b, mut l) = setup();
        let t = tx(&a, &b, 10, 0);
        let out = l.apply_block(1, [t.as_slice(), t.as_slice()]).unwrap();
        assert_eq!(out.applied, 1);
        assert_eq!(out.rejected.len(), 1);
        let out = l.apply_block(2, [t.as_slice()]).unwrap();
        assert_eq!(out.applied, 0);
        assert_eq!(l.account(&a.public()).balance, 90);
    }

    #[test]
    fn blocks_apply_in_order_and_states_agree() {
        let (a, b, mut l) = setup();
        assert!(l.apply_block(2, []).is_err());
        let mut other = l.clone();
        let txs = [tx(&a, &b, 3, 0), tx(&b, &a, 1, 0), tx(&a, &b, 200, 1)];
        let x = l.apply_block(1, txs.iter().map(Vec::as_slice)).unwrap();
        let y = other.apply_block(1, txs.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(x, y);
        assert_eq!(x.applied, 2);
        // Restoring from the persisted accounts gives the same root.
        let restored = Ledger::restore(l.accounts().clone(), 1);
        assert_eq!(restored, l);
        assert!(Ledger::genesis(&[(a.public(), 1), (a.public(), 2)]).is_err());
    }
}
