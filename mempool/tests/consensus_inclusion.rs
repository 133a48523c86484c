//! The inclusion rule inside the consensus core: a replica with
//! `MempoolInclusion` installed votes for a proposal only if it honours the
//! attached lists. (The rule's own table tests are in `src/inclusion.rs`;
//! these check the wiring: lists decoded from votes, ancestors, refusals.)
#![allow(clippy::unwrap_used)]

use ordo_consensus::testing::Fixture;
use ordo_consensus::{Action, Block, Config, Core, Event, InclusionAttachment, Message};
use ordo_mempool::consensus::MempoolInclusion;
use ordo_mempool::InclusionList;
use ordo_types::{codec, Digest, NodeIndex};

fn item(name: &str) -> Vec<u8> {
    format!("item-{name}").into_bytes()
}

fn key(name: &str) -> Digest {
    Digest::of(&item(name))
}

/// Node 0 of a 4-node committee with the rule on (round-robin leaders: the
/// hand-built blocks pick their authors that way).
fn replica(f: &Fixture) -> Core {
    let config = Config {
        leader_reputation: false,
        ..Config::default()
    };
    let mut core = f
        .core(0, config)
        .with_inclusion_rules(Box::new(MempoolInclusion::new(
            0,
            f.keys[0].clone(),
            f.committee.clone(),
            100,
            8,
            MempoolInclusion::digest_key,
        )));
    core.start(0);
    core
}

/// A list for view 1 by `author`, signed with `signer`'s key.
fn list(f: &Fixture, author: NodeIndex, signer: NodeIndex, names: &[&str]) -> InclusionAttachment {
    let certs = names.iter().map(|n| key(n)).collect();
    let mut l = InclusionList::sign(&f.keys[usize::from(signer)], signer, 1, certs);
    l.author = author;
    codec::encode(&l).unwrap()
}

fn honest_lists(f: &Fixture, authors: &[NodeIndex], names: &[&str]) -> Vec<InclusionAttachment> {
    authors.iter().map(|a| list(f, *a, *a, names)).collect()
}

/// Delivers b1 (view 1, `b1_items`) and then b2 (view 2, `b2_items`, with
/// `lists`); returns whether node 0 voted for b2.
fn votes_for_b2(b1_items: &[&str], b2_items: &[&str], lists: Vec<InclusionAttachment>) -> bool {
    let f = Fixture::new(4);
    let mut core = replica(&f);
    let g = f.genesis();
    let b1 = f.block(
        1,
        1,
        &g,
        &f.genesis_qc(),
        None,
        b1_items.iter().map(|n| item(n)).collect(),
    );
    let b2 = f.block_with_lists(
        2,
        2,
        &b1,
        &f.qc(&b1),
        None,
        b2_items.iter().map(|n| item(n)).collect(),
        lists,
    );
    let deliver = |core: &mut Core, from: NodeIndex, block: &Block| {
        core.handle(
            1,
            Event::Message {
                from,
                message: Message::Proposal(Box::new(block.clone())),
            },
        )
    };
    let first = deliver(&mut core, 1, &b1);
    assert!(voted(&first, 1), "view 1 is exempt");
    let actions = deliver(&mut core, 2, &b2);
    voted(&actions, 2)
}

fn voted(actions: &[Action], view: u64) -> bool {
    actions.iter().any(|a| match a {
        Action::Send {
            message: Message::Vote(v),
            ..
        } => {
            assert!(v.inclusion.is_some(), "votes carry the voter's list");
            v.view == view
        }
        _ => false,
    })
}

#[test]
fn replica_votes_only_for_proposals_that_honour_the_lists() {
    let f = Fixture::new(4); // f = 1: quorum 3, required on >= 2 lists
    let three_x = || honest_lists(&f, &[0, 1, 2], &["x"]);
    let mut forged = honest_lists(&f, &[0, 1], &["x"]);
    forged.push(list(&f, 2, 3, &["x"])); // claims 2, signed by 3
    let mut non_member = honest_lists(&f, &[0, 1], &["x"]);
    non_member.push(list(&f, 9, 3, &["x"]));
    let mut one_names_x = honest_lists(&f, &[0, 1], &[]);
    one_names_x.extend(honest_lists(&f, &[2], &["x"]));
    let mut two_name_x = honest_lists(&f, &[0], &[]);
    two_name_x.extend(honest_lists(&f, &[1, 2], &["x"]));
    let garbage = vec![vec![1, 2, 3]; 3];

    type Row<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<&'a str>,
        Vec<InclusionAttachment>,
        bool,
    );
    let table: Vec<Row> = vec![
        ("required cert included", vec![], vec!["x"], three_x(), true),
        (
            "required cert in uncommitted ancestor",
            vec!["x"],
            vec![],
            three_x(),
            true,
        ),
        ("required cert omitted", vec![], vec!["y"], three_x(), false),
        ("empty block omitting it", vec![], vec![], three_x(), false),
        (
            "named on one list (< f+1): optional",
            vec![],
            vec![],
            one_names_x,
            true,
        ),
        (
            "named on f+1 lists: required",
            vec![],
            vec![],
            two_name_x,
            false,
        ),
        (
            "forged list ignored: 2 valid < 2f+1",
            vec![],
            vec!["x"],
            forged,
            false,
        ),
        (
            "non-member list ignored: 2 valid < 2f+1",
            vec![],
            vec!["x"],
            non_member,
            false,
        ),
        ("no lists at all", vec![], vec!["x"], vec![], false),
        (
            "lists that do not decode",
            vec![],
            vec!["x"],
            garbage,
            false,
        ),
        (
            "two lists only",
            vec![],
            vec!["x"],
            honest_lists(&f, &[0, 1], &["x"]),
            false,
        ),
    ];
    for (name, b1, b2, lists, expected) in table {
        assert_eq!(votes_for_b2(&b1, &b2, lists), expected, "{name}");
    }
}

#[test]
fn lists_are_covered_by_the_block_digest() {
    let f = Fixture::new(4);
    let g = f.genesis();
    let qc = f.genesis_qc();
    let a = f.block_with_lists(
        1,
        1,
        &g,
        &qc,
        None,
        vec![item("x")],
        honest_lists(&f, &[0], &["x"]),
    );
    let b = f.block_with_lists(
        1,
        1,
        &g,
        &qc,
        None,
        vec![item("x")],
        honest_lists(&f, &[1], &["x"]),
    );
    let none = f.block(1, 1, &g, &qc, None, vec![item("x")]);
    assert_ne!(a.digest(), b.digest());
    assert_ne!(a.digest(), none.digest());
    // Swapping the lists of a signed block breaks its payload digest.
    let mut swapped = a.clone();
    swapped.inclusion = b.inclusion.clone();
    let mut core = replica(&f);
    let actions = core.handle(
        1,
        Event::Message {
            from: 1,
            message: Message::Proposal(Box::new(swapped)),
        },
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Misbehaviour { .. })));
}

#[test]
fn own_list_names_items_held_past_the_delay() {
    use ordo_consensus::InclusionRules;
    let f = Fixture::new(4);
    let mut rules = MempoolInclusion::new(
        0,
        f.keys[0].clone(),
        f.committee.clone(),
        100,
        8,
        MempoolInclusion::digest_key,
    );
    rules.on_available(0, &[item("a")]);
    rules.on_available(50, &[item("b")]);
    let decode = |bytes: InclusionAttachment| codec::decode::<InclusionList>(&bytes).unwrap().certs;
    assert_eq!(decode(rules.list_for(99, 1).unwrap()), Vec::<Digest>::new());
    assert_eq!(decode(rules.list_for(100, 1).unwrap()), vec![key("a")]);
    assert_eq!(
        decode(rules.list_for(150, 1).unwrap()),
        vec![key("a"), key("b")]
    );
    rules.on_committed(&[item("a")]);
    assert_eq!(decode(rules.list_for(150, 2).unwrap()), vec![key("b")]);
    rules.on_available(200, &[item("a")]); // a late copy of a committed item
    assert_eq!(decode(rules.list_for(400, 2).unwrap()), vec![key("b")]);
}
