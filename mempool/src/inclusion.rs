//! Inclusion lists: the censorship-resistance rule, as pure functions.
//!
//! Every vote and timeout carries its signer's [`InclusionList`]: digests of
//! certificates it has held uncommitted for longer than `inclusion_delay_ms`,
//! oldest first. The leader of the next view attaches the lists it used and
//! [`check_inclusion`] decides, identically on every honest replica, whether
//! its proposal respects them:
//!
//! 1. a list counts if it is signed by a member, for the expected view, not
//!    longer than the bound, and the first valid list of its author;
//! 2. at least a quorum (`2f + 1` when `n = 3f + 1`) of lists must count;
//! 3. a digest on at least `f + 1` counted lists (so on an honest node's
//!    list) is *required*; required digests are ranked oldest first by their
//!    best (smallest) position on any counted list, ties by digest;
//! 4. every required digest not in an uncommitted ancestor must be in the
//!    proposal, except that a full proposal (`max_certs`) only has to carry
//!    the oldest `max_certs` of them.
//!
//! Rule 4 is slightly stricter than "the included required ones form an
//! oldest-first prefix": a full block may not spend its slots on other
//! certificates while required ones wait, otherwise a censoring leader could
//! pad its blocks and keep omitting the same certificate.

use std::collections::{BTreeMap, HashSet};

use ordo_types::{Committee, Digest, Keypair, NodeIndex, Signature};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A node's signed list of certificates it has waited too long to see
/// committed, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionList {
    pub author: NodeIndex,
    pub view: u64,
    pub certs: Vec<Digest>,
    pub signature: Signature,
}

/// What an inclusion list signs: blake3 in the `ordo-inclusion-list` domain
/// over author, view and the digests in order.
pub fn inclusion_message(author: NodeIndex, view: u64, certs: &[Digest]) -> [u8; 32] {
    let mut hasher = Digest::hasher("ordo-inclusion-list");
    hasher
        .update_u64(u64::from(author))
        .update_u64(view)
        .update_u64(certs.len() as u64);
    for digest in certs {
        hasher.update(digest.as_bytes());
    }
    hasher.finalize().0
}

impl InclusionList {
    /// Signs a list; `certs` should already be bounded (the mempool's
    /// `due_for_inclusion` is).
    pub fn sign(keypair: &Keypair, author: NodeIndex, view: u64, certs: Vec<Digest>) -> Self {
        let signature = keypair.sign(&inclusion_message(author, view, &certs));
        InclusionList {
            author,
            view,
            certs,
            signature,
        }
    }

    pub fn message(&self) -> [u8; 32] {
        inclusion_message(self.author, self.view, &self.certs)
    }

    /// Checks membership, the length bound and the signature.
    pub fn verify(&self, committee: &Committee, max_len: usize) -> Result<()> {
        if committee.member(self.author).is_none() {
            return Err(Error::NotAMember(self.author));
        }
        if self.certs.len() > max_len {
            return Err(Error::TooManyCerts {
                count: self.certs.len(),
                max: max_len,
            });
        }
        committee
            .verify(self.author, &self.message(), &self.signature)
            .map_err(|_| Error::BadSignature(self.author))
    }
}

/// The parameters of the rule every replica applies the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InclusionRule {
    /// Most certificates in one block.
    pub max_certs: usize,
    /// Longest inclusion list that counts.
    pub max_list_len: usize,
}

/// A proposal as the rule sees it.
#[derive(Clone, Copy)]
pub struct Proposal<'a> {
    /// The view the attached lists must be for (the view before the
    /// proposal's); stale lists must not count.
    pub list_view: u64,
    /// The batch certificates the block carries.
    pub certs: &'a [Digest],
    /// Whether a certificate is carried by an ancestor (uncommitted, or
    /// committed recently).
    pub ancestors: &'a dyn Fn(&Digest) -> bool,
    /// The inclusion lists the leader attached.
    pub lists: &'a [InclusionList],
}

/// The lists that count (rule 1), in the order given.
pub fn valid_lists<'a>(
    lists: &'a [InclusionList],
    list_view: u64,
    committee: &Committee,
    max_list_len: usize,
) -> Vec<&'a InclusionList> {
    let plausible: Vec<&InclusionList> = lists
        .iter()
        .filter(|l| {
            l.view == list_view
                && l.certs.len() <= max_list_len
                && committee.member(l.author).is_some()
        })
        .collect();
    // One batch verification for the honest case; blame one by one if not.
    let messages: Vec<[u8; 32]> = plausible.iter().map(|l| l.message()).collect();
    let items: Vec<(NodeIndex, &[u8], Signature)> = plausible
        .iter()
        .zip(&messages)
        .map(|(l, m)| (l.author, m.as_slice(), l.signature))
        .collect();
    let all_good = committee.verify_many(&items).is_ok();
    let mut authors = HashSet::new();
    plausible
        .into_iter()
        .zip(&messages)
        .filter(|(l, m)| {
            all_good
                || committee
                    .verify(l.author, m.as_slice(), &l.signature)
                    .is_ok()
        })
        .filter(|(l, _)| authors.insert(l.author))
        .map(|(l, _)| l)
        .collect()
}

/// The required digests (rules 2 and 3), oldest first.
pub fn required_certs(
    lists: &[InclusionList],
    list_view: u64,
    committee: &Committee,
    max_list_len: usize,
) -> Result<Vec<Digest>> {
    let valid = valid_lists(lists, list_view, committee, max_list_len);
    if valid.len() < committee.quorum() {
        return Err(Error::TooFewInclusionLists {
            valid: valid.len(),
            needed: committee.quorum(),
        });
    }
    // digest -> (lists naming it, best position)
    let mut tally: BTreeMap<Digest, (usize, usize)> = BTreeMap::new();
    for list in valid {
        let mut seen = HashSet::new();
        for (position, digest) in list.certs.iter().enumerate() {
            if !seen.insert(*digest) {
                continue;
            }
            let entry = tally.entry(*digest).or_insert((0, position));
            entry.0 += 1;
            entry.1 = entry.1.min(position);
        }
    }
    let mut required: Vec<(usize, Digest)> = tally
        .into_iter()
        .filter(|(_, (count, _))| *count >= committee.validity())
        .map(|(digest, (_, position))| (position, digest))
        .collect();
    required.sort();
    Ok(required.into_iter().map(|(_, digest)| digest).collect())
}

/// Rule 4: `Ok(())` if the proposal honours the attached lists.
pub fn check_inclusion(
    proposal: &Proposal<'_>,
    committee: &Committee,
    rule: &InclusionRule,
) -> Result<()> {
    if proposal.certs.len() > rule.max_certs {
        return Err(Error::TooManyCerts {
            count: proposal.certs.len(),
            max: rule.max_certs,
        });
    }
    let required = required_certs(
        proposal.lists,
        proposal.list_view,
        committee,
        rule.max_list_len,
    )?;
    let carried: HashSet<&Digest> = proposal.certs.iter().collect();
    let full = proposal.certs.len() >= rule.max_certs;
    let outstanding = required
        .iter()
        .filter(|d| !(proposal.ancestors)(d))
        .take(rule.max_certs);
    for digest in outstanding {
        if !carried.contains(digest) {
            return Err(if full {
                Error::NotOldestFirst(*digest)
            } else {
                Error::CertOmitted(*digest)
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: u64 = 9;
    const RULE: InclusionRule = InclusionRule {
        max_certs: 3,
        max_list_len: 8,
    };

    fn d(name: &str) -> Digest {
        Digest::of(name.as_bytes())
    }

    fn digests(names: &[&str]) -> Vec<Digest> {
        names.iter().map(|n| d(n)).collect()
    }

    /// Lists by members `authors`, each naming `names`.
    fn lists(keys: &[Keypair], authors: &[NodeIndex], names: &[&str]) -> Vec<InclusionList> {
        authors
            .iter()
            .map(|&a| InclusionList::sign(&keys[usize::from(a)], a, VIEW, digests(names)))
            .collect()
    }

    fn check(
        committee: &Committee,
        certs: &[&str],
        ancestors: &[&str],
        attached: &[InclusionList],
    ) -> Result<()> {
        let certs = digests(certs);
        let ancestors: HashSet<Digest> = digests(ancestors).into_iter().collect();
        let proposal = Proposal {
            list_view: VIEW,
            certs: &certs,
            ancestors: &|d| ancestors.contains(d),
            lists: attached,
        };
        check_inclusion(&proposal, committee, &RULE)
    }

    #[test]
    fn inclusion_rule_table() {
        let (committee, keys) = Committee::for_testing(4); // f = 1, quorum 3
        let three = lists(&keys, &[0, 1, 2], &["a"]);
        // "a" on two lists (f + 1) is required; "b" on one is not.
        let mut mixed = lists(&keys, &[0, 1], &["a"]);
        mixed.extend(lists(&keys, &[2], &["a", "b"]));
        // Four required certificates, oldest first a, b, c, d.
        let many = lists(&keys, &[0, 1, 2], &["a", "b", "c", "d"]);

        let mut forged = lists(&keys, &[0, 1], &["a"]);
        let mut fake = InclusionList::sign(&keys[3], 2, VIEW, digests(&["a"]));
        fake.author = 2; // signed by 3, claims 2
        forged.push(fake);

        let mut non_member = lists(&keys, &[0, 1], &["a"]);
        non_member.push(InclusionList::sign(&keys[0], 9, VIEW, digests(&["a"])));

        let mut duplicates = lists(&keys, &[0, 1], &["a"]);
        duplicates.extend(lists(&keys, &[1], &["a"]));

        let mut stale = lists(&keys, &[0, 1], &["a"]);
        stale.push(InclusionList::sign(&keys[2], 2, VIEW - 1, digests(&["a"])));

        let too_few = |valid| Err(Error::TooFewInclusionLists { valid, needed: 3 });

        type Row<'a> = (
            &'a str,
            Vec<&'a str>,
            Vec<&'a str>,
            &'a [InclusionList],
            Result<()>,
        );
        let table: Vec<Row> = vec![
            ("included", vec!["a"], vec![], &three, Ok(())),
            ("included in ancestor", vec![], vec!["a"], &three, Ok(())),
            (
                "omitted is refused",
                vec!["x"],
                vec![],
                &three,
                Err(Error::CertOmitted(d("a"))),
            ),
            ("below f+1 is optional", vec!["a"], vec![], &mixed, Ok(())),
            ("no lists", vec![], vec![], &mixed[..0], too_few(0)),
            (
                "block full: oldest first",
                vec!["a", "b", "c"],
                vec![],
                &many,
                Ok(()),
            ),
            (
                "block full: ancestor frees a slot",
                vec!["b", "c", "d"],
                vec!["a"],
                &many,
                Ok(()),
            ),
            (
                "block full: skipping the oldest is refused",
                vec!["b", "c", "d"],
                vec![],
                &many,
                Err(Error::NotOldestFirst(d("a"))),
            ),
            (
                "block full of others is refused",
                vec!["x", "y", "z"],
                vec![],
                &three,
                Err(Error::NotOldestFirst(d("a"))),
            ),
            (
                "forged list is ignored",
                vec!["a"],
                vec![],
                &forged,
                too_few(2),
            ),
            (
                "non-member list is ignored",
                vec!["a"],
                vec![],
                &non_member,
                too_few(2),
            ),
            (
                "duplicate author counts once",
                vec!["a"],
                vec![],
                &duplicates,
                too_few(2),
            ),
            (
                "stale view is ignored",
                vec!["a"],
                vec![],
                &stale,
                too_few(2),
            ),
            (
                "too many certs",
                vec!["a", "b", "c", "d"],
                vec![],
                &three,
                Err(Error::TooManyCerts { count: 4, max: 3 }),
            ),
        ];
        for (name, certs, ancestors, attached, expected) in table {
            assert_eq!(
                check(&committee, &certs, &ancestors, attached),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn forged_list_does_not_hide_the_genuine_one() {
        let (committee, keys) = Committee::for_testing(4);
        let mut attached = lists(&keys, &[0, 1], &["a"]);
        let mut fake = InclusionList::sign(&keys[3], 2, VIEW, vec![]);
        fake.author = 2;
        attached.push(fake);
        attached.extend(lists(&keys, &[2], &["a"]));
        assert_eq!(
            check(&committee, &[], &[], &attached),
            Err(Error::CertOmitted(d("a")))
        );
        assert_eq!(check(&committee, &["a"], &[], &attached), Ok(()));
    }

    #[test]
    fn required_are_ranked_by_best_position() {
        let (committee, keys) = Committee::for_testing(4);
        let mut attached = lists(&keys, &[0], &["c", "b", "a"]);
        attached.extend(lists(&keys, &[1], &["a", "c"]));
        attached.extend(lists(&keys, &[2], &["b"]));
        let got = required_certs(&attached, VIEW, &committee, 8).unwrap();
        // a: best 0, c: best 0, b: best 0 -> all rank 0, ties by digest.
        let mut expected = digests(&["a", "b", "c"]);
        expected.sort();
        assert_eq!(got, expected);

        let attached = [
            lists(&keys, &[0], &["x", "y"]),
            lists(&keys, &[1], &["z", "x", "y"]),
            lists(&keys, &[2], &["z", "w", "y"]),
        ]
        .concat();
        let got = required_certs(&attached, VIEW, &committee, 8).unwrap();
        // x and z are both first somewhere, y at best second; w is on one list.
        let mut first = digests(&["x", "z"]);
        first.sort();
        assert_eq!(got, [first, vec![d("y")]].concat());
    }

    #[test]
    fn list_signature_is_domain_separated_and_round_trips() {
        let (committee, keys) = Committee::for_testing(4);
        let list = InclusionList::sign(&keys[1], 1, 3, digests(&["a"]));
        assert_eq!(list.verify(&committee, 8), Ok(()));
        assert_eq!(
            list.verify(&committee, 0),
            Err(Error::TooManyCerts { count: 1, max: 0 })
        );
        let mut moved = list.clone();
        moved.view = 4;
        assert_eq!(moved.verify(&committee, 8), Err(Error::BadSignature(1)));
        let bytes = ordo_types::codec::encode(&list).unwrap();
        assert_eq!(
            ordo_types::codec::decode::<InclusionList>(&bytes).unwrap(),
            list
        );
    }
}
