//! The DNS answers of a region's resolvers side by side, with the differences marked.
//!
//! An edge that some resolvers serve and others of the same region do not is a difference. It is
//! marked as a stale answer of the resolvers serving it when either the edge fails while the
//! others' edges work (the lab's stale resolver answers a retired edge), or it still works but
//! the others served it within the last hour and no longer do while their new edges work too (the
//! CDN moved on and this resolver's cache did not). With two resolvers and nothing failing, a
//! difference alone cannot say which side is stale, so it is only marked as one.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::FailureClass;

/// What one resolver answered in the newest probes of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    pub resolver: String,
    /// Edge IP -> whether its newest probe through this resolver succeeded.
    pub edges: BTreeMap<String, bool>,
    /// The DNS failure class when the resolver gave no address.
    pub dns_failure: Option<FailureClass>,
}

impl Answer {
    fn answered(&self) -> bool {
        !self.edges.is_empty()
    }

    fn any_ok(&self) -> bool {
        self.edges.values().any(|ok| *ok)
    }
}

/// Whether a resolver serves an edge, and how that edge's probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Served {
    Ok,
    Failing,
    Absent,
}

/// How an edge's row compares across the resolvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mark {
    /// Every answering resolver serves it.
    Same,
    /// Some do, some do not.
    Differs,
    /// A stale answer of these resolvers.
    Stale(Vec<String>),
}

/// One edge IP across the region's resolvers (cells in the answers' order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EdgeRow {
    pub edge: String,
    pub cells: Vec<Served>,
    pub mark: Mark,
}

/// Compares the answers of one region's resolvers; `history` holds the edges each resolver
/// served over the last hour.
pub(super) fn compare(
    answers: &[Answer],
    history: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<EdgeRow> {
    let edges: BTreeSet<&String> = answers.iter().flat_map(|a| a.edges.keys()).collect();
    edges
        .into_iter()
        .map(|edge| {
            let cells = answers
                .iter()
                .map(|a| match a.edges.get(edge) {
                    Some(true) => Served::Ok,
                    Some(false) => Served::Failing,
                    None => Served::Absent,
                })
                .collect();
            EdgeRow {
                edge: edge.clone(),
                cells,
                mark: mark(edge, answers, history),
            }
        })
        .collect()
}

fn mark(edge: &str, answers: &[Answer], history: &BTreeMap<String, BTreeSet<String>>) -> Mark {
    let (serving, others): (Vec<&Answer>, Vec<&Answer>) = answers
        .iter()
        .filter(|a| a.answered())
        .partition(|a| a.edges.contains_key(edge));
    if others.is_empty() {
        return Mark::Same;
    }
    let others_work = others.iter().all(|o| o.any_ok());
    let edge_fails = serving.iter().all(|a| a.edges.get(edge) == Some(&false));
    let others_moved_on = others.iter().any(|o| {
        history
            .get(&o.resolver)
            .is_some_and(|served| served.contains(edge))
    });
    let stale = others_work && (edge_fails || others_moved_on);
    if stale {
        Mark::Stale(serving.iter().map(|a| a.resolver.clone()).collect())
    } else {
        Mark::Differs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(resolver: &str, edges: &[(&str, bool)]) -> Answer {
        Answer {
            resolver: resolver.into(),
            edges: edges.iter().map(|(e, ok)| (e.to_string(), *ok)).collect(),
            dns_failure: None,
        }
    }

    fn history(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        entries
            .iter()
            .map(|(r, es)| (r.to_string(), es.iter().map(|e| e.to_string()).collect()))
            .collect()
    }

    #[test]
    fn resolvers_that_agree_mark_nothing() {
        let a = [
            answer("isp", &[("127.21.1.1", true), ("127.21.1.2", true)]),
            answer("public", &[("127.21.1.1", true), ("127.21.1.2", true)]),
        ];
        let rows = compare(&a, &BTreeMap::new());
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.mark == Mark::Same));
        assert_eq!(rows[0].cells, vec![Served::Ok, Served::Ok]);
    }

    #[test]
    fn a_resolver_answering_a_failing_edge_the_others_do_not_serve_is_stale() {
        // The lab's stale_dns: isp answers the retired edge .9, which refuses connections.
        let a = [
            answer("isp", &[("127.21.1.9", false)]),
            answer("public", &[("127.21.1.1", true), ("127.21.1.2", true)]),
        ];
        let h = history(&[
            ("isp", &["127.21.1.1", "127.21.1.2", "127.21.1.9"]),
            ("public", &["127.21.1.1", "127.21.1.2"]),
        ]);
        let rows = compare(&a, &h);
        let nine = rows.iter().find(|r| r.edge == "127.21.1.9").unwrap();
        assert_eq!(nine.mark, Mark::Stale(vec!["isp".into()]));
        assert_eq!(nine.cells, vec![Served::Failing, Served::Absent]);
        // The good resolver's edges differ too, but they are not the stale ones: they work and
        // the other side's edge does not.
        let one = rows.iter().find(|r| r.edge == "127.21.1.1").unwrap();
        assert_eq!(one.mark, Mark::Differs);
    }

    #[test]
    fn a_working_edge_the_others_served_before_and_no_longer_do_is_stale() {
        // The CDN moved from .1 to .3; public followed, isp still answers .1 from its cache.
        let a = [
            answer("isp", &[("127.21.1.1", true), ("127.21.1.2", true)]),
            answer("public", &[("127.21.1.3", true), ("127.21.1.2", true)]),
        ];
        let h = history(&[
            ("isp", &["127.21.1.1", "127.21.1.2"]),
            ("public", &["127.21.1.1", "127.21.1.2", "127.21.1.3"]),
        ]);
        let rows = compare(&a, &h);
        let marks: Vec<(&str, &Mark)> = rows.iter().map(|r| (r.edge.as_str(), &r.mark)).collect();
        assert_eq!(
            marks,
            vec![
                ("127.21.1.1", &Mark::Stale(vec!["isp".into()])),
                ("127.21.1.2", &Mark::Same),
                ("127.21.1.3", &Mark::Differs),
            ]
        );
    }

    #[test]
    fn a_resolver_that_failed_to_answer_is_left_out_of_the_comparison() {
        let mut failed = answer("isp", &[]);
        failed.dns_failure = Some(FailureClass::DnsTimeout);
        let a = [failed, answer("public", &[("127.21.1.1", true)])];
        let rows = compare(&a, &BTreeMap::new());
        assert_eq!(rows[0].mark, Mark::Same);
        assert_eq!(rows[0].cells, vec![Served::Absent, Served::Ok]);
    }
}
