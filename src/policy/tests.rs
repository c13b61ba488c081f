//! The three-valued semantics of policy trees, checked against a reference evaluator written
//! from the table in [`Decision`]'s documentation.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use proptest::prelude::*;

use super::*;
use crate::ipset::IpSet;
use crate::principal::{Principal, Scheme, SubjectKind};
use crate::request::RequestView;

/// What a decision is, without its reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Allow,
    Deny,
    Indeterminate,
}

fn answer(decision: &Decision) -> Answer {
    match decision {
        Decision::Allow => Answer::Allow,
        Decision::Deny(_) => Answer::Deny,
        Decision::Indeterminate(_) => Answer::Indeterminate,
    }
}

/// A policy tree, built into real policies and evaluated by [`reference`].
#[derive(Clone, Debug)]
enum Tree {
    Public,
    Authenticated,
    Anonymous,
    /// Any-of (`false`) or all-of (`true`) groups from `a`, `b`.
    Groups(bool, Vec<&'static str>),
    Scopes(bool, Vec<&'static str>),
    /// Allow (`true`) or deny list.
    Schemes(bool, Vec<Scheme>),
    KindIs(SubjectKind),
    /// Allow list `192.0.2.0/24` (`true`) or deny list of it.
    Ip(bool),
    /// A one-hour cap on every scheme.
    Expiry,
    All(Vec<Tree>),
    Any(Vec<Tree>),
    Not(Box<Tree>),
}

/// A principal's groups, scopes, scheme, kind and credential lifetime in hours.
type Held = (
    Vec<&'static str>,
    Vec<&'static str>,
    Scheme,
    SubjectKind,
    i64,
);

/// The caller: a principal (groups, scopes, scheme, kind, credential lifetime in hours) or
/// anonymous; and the client IP, if known.
#[derive(Clone, Debug)]
struct Caller {
    principal: Option<Held>,
    ip: Option<IpAddr>,
}

fn names() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(vec!["a", "b"], 1..=2)
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![
        Just(Scheme::BASIC),
        Just(Scheme::API_KEY),
        Just(Scheme::JWT)
    ]
}

fn kind() -> impl Strategy<Value = SubjectKind> {
    prop_oneof![Just(SubjectKind::User), Just(SubjectKind::Application)]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        Just(Tree::Public),
        Just(Tree::Authenticated),
        Just(Tree::Anonymous),
        (any::<bool>(), names()).prop_map(|(all, g)| Tree::Groups(all, g)),
        (any::<bool>(), names()).prop_map(|(all, s)| Tree::Scopes(all, s)),
        (any::<bool>(), proptest::collection::vec(scheme(), 1..3))
            .prop_map(|(allow, s)| Tree::Schemes(allow, s)),
        kind().prop_map(Tree::KindIs),
        any::<bool>().prop_map(Tree::Ip),
        Just(Tree::Expiry),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Tree::All),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Tree::Any),
            inner.prop_map(|t| Tree::Not(Box::new(t))),
        ]
    })
}

fn caller() -> impl Strategy<Value = Caller> {
    let principal = (
        proptest::sample::subsequence(vec!["a", "b"], 0..=2),
        proptest::sample::subsequence(vec!["a", "b"], 0..=2),
        scheme(),
        kind(),
        prop_oneof![Just(1i64), Just(48)],
    );
    let ip = prop_oneof![
        Just(None),
        Just(Some("192.0.2.1".parse().unwrap())),
        Just(Some("198.51.100.1".parse().unwrap())),
    ];
    (proptest::option::of(principal), ip).prop_map(|(principal, ip)| Caller { principal, ip })
}

fn build(tree: &Tree) -> Box<dyn Policy> {
    let net = || IpSet::parse(["192.0.2.0/24"]).unwrap();
    match tree {
        Tree::Public => Box::new(Public),
        Tree::Authenticated => Box::new(Authenticated),
        Tree::Anonymous => Box::new(Anonymous),
        Tree::Groups(true, g) => Box::new(Groups::all_of(g.clone())),
        Tree::Groups(false, g) => Box::new(Groups::any_of(g.clone())),
        Tree::Scopes(true, s) => Box::new(Scopes::all_of(s.clone())),
        Tree::Scopes(false, s) => Box::new(Scopes::any_of(s.clone())),
        Tree::Schemes(true, s) => Box::new(Schemes::allow(s.clone())),
        Tree::Schemes(false, s) => Box::new(Schemes::deny(s.clone())),
        Tree::KindIs(kind) => Box::new(KindIs(*kind)),
        Tree::Ip(true) => Box::new(IpRanges::new().allow(net())),
        Tree::Ip(false) => Box::new(IpRanges::new().deny(net())),
        Tree::Expiry => Box::new(
            ExpiryCap::new()
                .default_max_lifetime(Duration::from_secs(3600))
                .max_lifetime(Scheme::BASIC, Duration::from_secs(3600)),
        ),
        Tree::All(trees) => Box::new(All::from(trees.iter().map(build).collect::<Vec<_>>())),
        Tree::Any(trees) => Box::new(Any::from(trees.iter().map(build).collect::<Vec<_>>())),
        Tree::Not(tree) => Box::new(Not::new(build(tree))),
    }
}

/// The semantics, written plainly: rules about a principal cannot judge an anonymous request,
/// `IpRanges` cannot judge an unknown client IP; `All`: any deny, else any indeterminate, else
/// allow; `Any`: any allow, else any indeterminate, else deny; `Not` swaps allow and deny.
fn reference(tree: &Tree, caller: &Caller) -> Answer {
    use Answer::*;
    let verdict = |ok: bool| if ok { Allow } else { Deny };
    let principal = caller.principal.as_ref();
    match tree {
        Tree::Public => Allow,
        Tree::Authenticated => verdict(principal.is_some()),
        Tree::Anonymous => verdict(principal.is_none()),
        Tree::Groups(all, wanted) | Tree::Scopes(all, wanted) => match principal {
            None => Indeterminate,
            Some((groups, scopes, ..)) => {
                let held = if matches!(tree, Tree::Groups(..)) {
                    groups
                } else {
                    scopes
                };
                let has = |n: &&str| held.contains(n);
                verdict(if *all {
                    wanted.iter().all(has)
                } else {
                    wanted.iter().any(has)
                })
            }
        },
        Tree::Schemes(allow, list) => match principal {
            None => Indeterminate,
            Some((_, _, scheme, ..)) => verdict(list.contains(scheme) == *allow),
        },
        Tree::KindIs(kind) => match principal {
            None => Indeterminate,
            Some((_, _, _, k, _)) => verdict(k == kind),
        },
        Tree::Ip(allow) => match caller.ip {
            None => Indeterminate,
            Some(ip) => verdict((ip.to_string() == "192.0.2.1") == *allow),
        },
        Tree::Expiry => match principal {
            None => Indeterminate,
            Some((.., hours)) => verdict(*hours <= 1),
        },
        Tree::All(trees) => {
            let answers: Vec<Answer> = trees.iter().map(|t| reference(t, caller)).collect();
            if answers.contains(&Deny) {
                Deny
            } else if answers.contains(&Indeterminate) {
                Indeterminate
            } else {
                Allow
            }
        }
        Tree::Any(trees) => {
            let answers: Vec<Answer> = trees.iter().map(|t| reference(t, caller)).collect();
            if answers.contains(&Allow) {
                Allow
            } else if answers.contains(&Indeterminate) {
                Indeterminate
            } else {
                Deny
            }
        }
        Tree::Not(tree) => match reference(tree, caller) {
            Allow => Deny,
            Deny => Allow,
            Indeterminate => Indeterminate,
        },
    }
}

fn evaluate(policy: &dyn Policy, caller: &Caller) -> Answer {
    let now = Utc::now();
    let principal = caller
        .principal
        .as_ref()
        .map(|(groups, scopes, scheme, kind, hours)| {
            Principal::new("p", *kind, *scheme)
                .with_groups(groups.clone())
                .with_scopes(scopes.clone())
                .with_issued_at(now)
                .with_expires_at(now + chrono::Duration::hours(*hours))
        });
    let (parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
    let request = RequestView::from_parts(&parts).with_client_ip(caller.ip);
    let context = PolicyContext::new(principal.as_ref(), &request, "/x");
    answer(&policy.evaluate(&context))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn policy_trees_follow_the_reference(tree in tree(), caller in caller()) {
        let policy = build(&tree);
        prop_assert_eq!(evaluate(&*policy, &caller), reference(&tree, &caller));
    }
}

/// The review's two cases: negating a rule that cannot judge the request does not admit it.
#[test]
fn not_stays_closed_without_a_principal_or_a_client_ip() {
    let anonymous_no_ip = Caller {
        principal: None,
        ip: None,
    };
    let not_groups = Not::new(Groups::any_of(["banned"]));
    assert_eq!(
        evaluate(&not_groups, &anonymous_no_ip),
        Answer::Indeterminate
    );
    let not_ranges = Not::new(IpRanges::new().allow(IpSet::parse(["192.0.2.0/24"]).unwrap()));
    assert_eq!(
        evaluate(&not_ranges, &anonymous_no_ip),
        Answer::Indeterminate
    );
    // `Authenticated` denies (not indeterminate), so its negation admits anonymous callers.
    assert_eq!(
        evaluate(&Not::new(Authenticated), &anonymous_no_ip),
        Answer::Allow
    );
}
