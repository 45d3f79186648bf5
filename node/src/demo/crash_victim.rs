//! Which member the demo SIGKILLs: the one whose loss cuts off the most streams.

use crate::app::conference::ConferenceStatus;

/// How many routes to sources other than member `i` name it as their next hop, over the
/// members' last statuses: the (source, receiver) streams that pass through `i` on their way
/// (a source's own stream is not relayed by it).
pub(super) fn routes_relayed(
    ids: &[String],
    senders: &[String],
    statuses: &[Option<ConferenceStatus>],
    i: usize,
) -> usize {
    let me = ids[i].as_str();
    statuses
        .iter()
        .flatten()
        .flat_map(|s| s.routes.iter())
        .filter(|r| r.dest != me && senders.contains(&r.dest))
        .filter(|r| r.next_hop.as_deref() == Some(me))
        .count()
}

/// The member to crash among the `eligible` ones: the busiest relay that does not send; when
/// no such member relays anything (the sources' trees are stars), the source that relays the
/// most other sources' streams, whose own stream then ends; when nobody relays at all, the
/// member with the most neighbours (a crash that cuts nobody off, which the demo says). Ties go
/// to the most neighbours, then to the lowest member number. A source that relays nothing is
/// never chosen, so a single sender is never crashed.
pub(super) fn crash_victim(
    ids: &[String],
    senders: &[String],
    statuses: &[Option<ConferenceStatus>],
    eligible: impl Fn(usize) -> bool,
) -> Option<usize> {
    (0..ids.len())
        .filter(|&i| eligible(i))
        .map(|i| {
            let relayed = routes_relayed(ids, senders, statuses, i);
            let sends = senders.contains(&ids[i]);
            let neighbours = statuses[i].as_ref().map_or(0, |s| s.neighbours.len());
            (i, relayed, sends, neighbours)
        })
        .filter(|&(_, relayed, sends, _)| !sends || relayed > 0)
        .max_by_key(|&(i, relayed, sends, neighbours)| {
            (
                relayed > 0,
                !sends,
                relayed,
                neighbours,
                std::cmp::Reverse(i),
            )
        })
        .map(|(i, ..)| i)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::app::conference::RouteStatus;

    /// A status whose routes go to `(destination, next hop)` and with `neighbours` neighbours.
    pub(in crate::demo) fn status(
        routes: &[(&str, &str)],
        neighbours: usize,
    ) -> Option<ConferenceStatus> {
        let mut s = ConferenceStatus {
            routes: routes
                .iter()
                .map(|(dest, hop)| RouteStatus {
                    dest: (*dest).to_owned(),
                    next_hop: Some((*hop).to_owned()),
                    latency_ms: None,
                    width: None,
                })
                .collect(),
            ..ConferenceStatus::default()
        };
        s.neighbours = (0..neighbours).map(|n| format!("n{n}")).collect();
        Some(s)
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_relay_that_does_not_send_goes_first() {
        let ids = ids(&["s", "t", "a", "b", "c"]);
        let senders = vec!["s".to_owned(), "t".to_owned()];
        // b reaches s through a; c reaches s and t through t, which relays s's stream.
        let statuses = vec![
            status(&[("t", "t")], 4),
            status(&[("s", "s")], 4),
            status(&[("s", "s"), ("t", "t")], 2),
            status(&[("s", "a"), ("t", "t")], 1),
            status(&[("s", "t"), ("t", "t")], 1),
        ];
        assert_eq!(routes_relayed(&ids, &senders, &statuses, 1), 1);
        assert_eq!(routes_relayed(&ids, &senders, &statuses, 2), 1);
        assert_eq!(crash_victim(&ids, &senders, &statuses, |_| true), Some(2));
        // Without a, the source t is the only relay: its own stream does not count.
        assert_eq!(crash_victim(&ids, &senders, &statuses, |i| i != 2), Some(1));
    }

    #[test]
    fn stars_crash_the_best_connected_member_that_does_not_send() {
        let ids = ids(&["s", "a", "b"]);
        let senders = vec!["s".to_owned()];
        let statuses = vec![
            status(&[], 2),
            status(&[("s", "s")], 1),
            status(&[("s", "s")], 2),
        ];
        assert_eq!(routes_relayed(&ids, &senders, &statuses, 0), 0);
        assert_eq!(crash_victim(&ids, &senders, &statuses, |_| true), Some(2));
        // The only sender is never the one crashed.
        assert_eq!(crash_victim(&ids, &senders, &statuses, |i| i == 0), None);
    }
}
