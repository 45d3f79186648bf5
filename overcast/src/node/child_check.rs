//! Checking on a child that may have died, so the root's table drops a dead node in a second
//! or two instead of the lease (see [`crate::OvercastConfig::check_silent_children`]).
//!
//! Two kinds of evidence start a check. A child that stopped acknowledging the bytes sent to it
//! (none for longer than its acknowledgements' pace allows, as the watch over a parent's stream
//! judges arrivals); and a report from the child's own child that lost it to the watch over the
//! stream (unanswered check-ins, see [`super::parent_watch`]): "your child left my check-ins
//! unanswered". Neither is taken on trust: the node asks the child to check in at once, and
//! again after each request left unanswered; only when `silent_parent_check_ins` requests in a
//! row went unanswered, with nothing heard from the child meanwhile, and a check-in interval
//! and a request's wait have passed (a live child's own periodic check-in lands in that time
//! even when the requests wait behind content on the way to it), is the child dead, with
//! its subtree, exactly as if its lease had run out. A child that answers is left alone for a
//! check-in interval (a lost datagram or a broken link below it, not a death; the lease judges
//! as before). A report starts a check only if it is about a child of this node and comes from
//! a node this node's table places under that child, and a child is checked once at a time:
//! the work a stranger can cause is a few small messages, bounded by the children.

use std::collections::BTreeMap;
use std::time::Duration;

use overlay_core::{NodeId, Time};

use super::Timer;
use super::core::{Child, Core};
use crate::certificate::DeathCause;
use crate::message::Message;

/// Where a check on one child stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// `unanswered` requests to check in went out; the next look is at `due`.
    Asking {
        /// Requests sent since the child was last heard.
        unanswered: u32,
        /// When the last one counts as unanswered.
        due: Time,
        /// When the check began.
        since: Time,
    },
    /// The child answered: reports about it are ignored until `until`.
    Answered {
        /// The end of the quiet spell.
        until: Time,
    },
}

/// The checks on this node's children, at most one per child.
#[derive(Clone, Debug, Default)]
pub(super) struct ChildChecks {
    checks: BTreeMap<NodeId, Check>,
}

/// What a check decided when its time came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Ask the child again.
    AskAgain,
    /// The child is dead.
    Dead,
}

impl ChildChecks {
    /// The earliest time a check must be looked at.
    fn next_due(&self) -> Option<Time> {
        self.checks
            .values()
            .filter_map(|c| match c {
                Check::Asking { due, .. } => Some(*due),
                Check::Answered { .. } => None,
            })
            .min()
    }

    /// Starts a check on `child` at `now` unless one runs or it answered lately; `true` if
    /// started (the caller asks the child).
    fn start(&mut self, now: Time, child: NodeId, wait: Duration) -> bool {
        match self.checks.get(&child) {
            Some(Check::Asking { .. }) => false,
            Some(Check::Answered { until }) if now < *until => false,
            _ => {
                self.checks.insert(
                    child,
                    Check::Asking {
                        unanswered: 1,
                        due: now + wait,
                        since: now,
                    },
                );
                true
            }
        }
    }

    /// A message came from `child` at `now`: a check on it ends, answered, and reports about
    /// it are ignored for `quiet`.
    pub(super) fn heard(&mut self, now: Time, child: NodeId, quiet: Duration) {
        if let Some(check) = self.checks.get_mut(&child)
            && let Check::Asking { .. } = check
        {
            *check = Check::Answered { until: now + quiet };
        }
    }

    /// The transport heard from `child`: requests so far may have been held up on the way, so
    /// their count starts over (the check goes on: the report may cover packets sent before a
    /// death).
    pub(super) fn heard_by_transport(&mut self, child: NodeId) {
        if let Some(Check::Asking { unanswered, .. }) = self.checks.get_mut(&child) {
            *unanswered = 0;
        }
    }

    /// The end of `child`'s quiet spell, if it answered lately or a check on it runs (then
    /// the check's own time).
    fn quiet_until(&self, child: &NodeId) -> Option<Time> {
        match self.checks.get(child)? {
            Check::Answered { until } => Some(*until),
            Check::Asking { due, .. } => Some(*due),
        }
    }

    /// Forgets `child` (it left, died, or moved).
    pub(super) fn forget(&mut self, child: &NodeId) {
        self.checks.remove(child);
    }

    /// The checks whose time came at `now`, with what each decided: after `lost_after`
    /// unanswered requests, dead, but not before `hold(child)` since the check began (the
    /// verdict waits till then). Quiet spells that ended are dropped.
    fn due(
        &mut self,
        now: Time,
        lost_after: u32,
        wait: Duration,
        hold: impl Fn(&NodeId) -> Duration,
    ) -> Vec<(NodeId, Verdict)> {
        let mut verdicts = Vec::new();
        self.checks.retain(|child, check| match *check {
            Check::Answered { until } => now < until,
            Check::Asking { due, .. } if now < due => true,
            Check::Asking {
                unanswered, since, ..
            } if unanswered >= lost_after => {
                let at = since + hold(child);
                if now < at {
                    *check = Check::Asking {
                        unanswered,
                        due: at,
                        since,
                    };
                    return true;
                }
                verdicts.push((*child, Verdict::Dead));
                false
            }
            Check::Asking {
                unanswered, since, ..
            } => {
                *check = Check::Asking {
                    unanswered: unanswered + 1,
                    due: now + wait,
                    since,
                };
                verdicts.push((*child, Verdict::AskAgain));
                true
            }
        });
        verdicts
    }
}

impl Core {
    /// Whether checks on children are on, and how long each request is given: twice the
    /// watch's floor (this node does not know its round trip to the child; three requests so
    /// given leave a live child well over a second to answer the first).
    fn child_check_wait(&self) -> Option<Duration> {
        let after = self.config.silence_check_in_after;
        (self.config.check_silent_children && !after.is_zero()).then_some(after * 2)
    }

    /// `from` lost its parent `parent` to unanswered check-ins: if `parent` is this node's
    /// child and `from` is under it, check on it.
    pub(super) fn on_parent_silent(&mut self, now: Time, from: NodeId, parent: NodeId) {
        let Some(wait) = self.child_check_wait() else {
            return;
        };
        if !self.children.contains_key(&parent) || self.table.via(&from) != Some(parent) {
            self.stats.silent_reports_ignored += 1;
            return;
        }
        if self.child_checks.start(now, parent, wait) {
            self.stats.child_checks += 1;
            self.outbox.send(parent, Message::CheckInNow);
            self.arm_child_check();
        }
    }

    /// When child `c`'s acknowledgements are overdue: bytes sent to it wait for one, and none
    /// came for longer than their pace allows (at least the watch's floor, and two ack
    /// delays). `None`: it owes none.
    fn acks_overdue_at(&self, c: &Child) -> Option<Time> {
        let owed = c.feed.owed_since?;
        if c.feed.next.is_none_or(|next| next <= c.feed.acked) {
            return None;
        }
        let since = c.acks.last().map_or(owed, |last| last.max(owed));
        let floor = self
            .config
            .silence_check_in_after
            .max(self.config.ack_delay * 2);
        Some(since + c.acks.overdue_after(floor))
    }

    /// Bytes sent to `child` now wait for its acknowledgement: the timer looks at it when
    /// they are overdue.
    pub(super) fn watch_acks(&mut self, now: Time, child: NodeId) {
        if self.child_check_wait().is_none() {
            return;
        }
        let Some(at) = self
            .children
            .get(&child)
            .and_then(|c| self.acks_overdue_at(c))
        else {
            return;
        };
        let at = at.max(now);
        if self.timers.get(Timer::ChildCheck).is_none_or(|t| at < t) {
            self.timers.set(Timer::ChildCheck, at);
        }
    }

    /// The child-check timer fired: ask again, or lose the children that never answered; check
    /// on children whose acknowledgements are overdue.
    pub(super) fn on_child_check_timer(&mut self, now: Time) {
        let Some(wait) = self.child_check_wait() else {
            return;
        };
        let lost_after = self.config.silent_parent_check_ins.max(1);
        // Any child is held dead no sooner than a check-in interval and a request's wait after
        // its check began: a live child checks in every interval on its own, so its periodic
        // check-in lands in the check even when the requests wait behind a full window of
        // content on the way to it. A child with children of its own is held no sooner than the
        // parent timeout: its orphans, which find it dead by then, reattach first, so the root
        // hears one death and not a subtree dying and being born again.
        let table = &self.table;
        let hold_any = self.config.check_in_interval + wait;
        let hold_subtree = self.config.parent_timeout.max(hold_any);
        let hold = |child: &NodeId| {
            if table.under(child).len() > 1 {
                hold_subtree
            } else {
                hold_any
            }
        };
        for (child, verdict) in self.child_checks.due(now, lost_after, wait, hold) {
            match verdict {
                Verdict::AskAgain => {
                    self.stats.child_checks += 1;
                    self.outbox.send(child, Message::CheckInNow);
                }
                Verdict::Dead => {
                    if self.children.contains_key(&child) {
                        self.stats.silent_children_lost += 1;
                        self.lose_child(child, DeathCause::Silent);
                    }
                }
            }
        }
        let overdue: Vec<NodeId> = self
            .children
            .iter()
            .filter(|(_, c)| self.acks_overdue_at(c).is_some_and(|at| at <= now))
            .map(|(&id, _)| id)
            .collect();
        for child in overdue {
            if self.child_checks.start(now, child, wait) {
                self.stats.child_checks += 1;
                self.stats.ack_silences += 1;
                self.outbox.send(child, Message::CheckInNow);
            }
        }
        self.arm_child_check();
    }

    /// The parent asked this node to check in at once (a child of this node reported it
    /// silent): it does, at most once per `silence_check_in_after` (a parent's requests come
    /// twice that apart, so a parent repeating them faster gains nothing).
    pub(super) fn on_check_in_now(&mut self, now: Time, from: NodeId) {
        if Some(from) != self.parent || self.is_root {
            return;
        }
        let spacing = self.config.silence_check_in_after;
        if self
            .checked_in_on_request
            .is_some_and(|at| now.saturating_since(at) < spacing)
        {
            return;
        }
        self.checked_in_on_request = Some(now);
        self.send_check_in(from);
    }

    /// A message came from `from`: if a check on it runs, it answered.
    pub(super) fn child_heard(&mut self, now: Time, from: NodeId) {
        let quiet = self.config.check_in_interval;
        self.child_checks.heard(now, from, quiet);
    }

    /// Arms the timer at the next check due or the next acknowledgement overdue, whichever
    /// comes first (a child still overdue after answering is looked at when its quiet spell
    /// ends).
    fn arm_child_check(&mut self) {
        let acks = self
            .children
            .iter()
            .filter_map(|(id, c)| {
                let at = self.acks_overdue_at(c)?;
                Some(self.child_checks.quiet_until(id).map_or(at, |q| at.max(q)))
            })
            .min();
        match self.child_checks.next_due().into_iter().chain(acks).min() {
            Some(at) => self.timers.set(Timer::ChildCheck, at),
            None => {
                self.timers.cancel(Timer::ChildCheck);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(400);

    fn ms(t: u64) -> Time {
        Time::ZERO + Duration::from_millis(t)
    }

    fn child() -> NodeId {
        NodeId::from_index(4)
    }

    impl ChildChecks {
        /// `due` for a child without a subtree: no hold.
        fn due_now(
            &mut self,
            now: Time,
            lost_after: u32,
            wait: Duration,
        ) -> Vec<(NodeId, Verdict)> {
            self.due(now, lost_after, wait, |_| Duration::ZERO)
        }
    }

    /// A check started at 0 whose three requests (0, 400 and 800 ms) went unanswered, with
    /// the verdict held for `hold`: at 1.2 s it has none yet.
    fn three_unanswered(hold: Duration) -> ChildChecks {
        let mut c = ChildChecks::default();
        assert!(c.start(ms(0), child(), WAIT));
        for at in [400, 800] {
            assert_eq!(
                c.due(ms(at), 3, WAIT, |_| hold),
                vec![(child(), Verdict::AskAgain)]
            );
        }
        assert!(c.due(ms(1200), 3, WAIT, |_| hold).is_empty());
        c
    }

    #[test]
    fn a_child_with_a_subtree_is_held_dead_no_sooner_than_the_hold() {
        let hold = Duration::from_secs(2);
        let mut c = three_unanswered(hold);
        // No more requests: the next look is when the hold ends.
        assert_eq!(c.next_due(), Some(ms(2000)));
        assert_eq!(
            c.due(ms(2000), 3, WAIT, |_| hold),
            vec![(child(), Verdict::Dead)]
        );
    }

    #[test]
    fn a_check_in_of_its_own_during_the_hold_keeps_the_child() {
        // The requests wait behind content on the way to the child; its periodic check-in
        // still comes within a check-in interval, and the hold waits for it.
        let hold = Duration::from_millis(1400);
        let mut c = three_unanswered(hold);
        c.heard(ms(1300), child(), Duration::from_secs(1));
        assert!(c.due(ms(1400), 3, WAIT, |_| hold).is_empty());
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn a_child_that_never_answers_is_dead_after_the_third_request() {
        let mut c = ChildChecks::default();
        assert!(c.start(ms(0), child(), WAIT));
        assert!(!c.start(ms(10), child(), WAIT), "one check at a time");
        assert_eq!(c.next_due(), Some(ms(400)));
        assert!(c.due_now(ms(399), 3, WAIT).is_empty());
        assert_eq!(
            c.due_now(ms(400), 3, WAIT),
            vec![(child(), Verdict::AskAgain)]
        );
        assert_eq!(
            c.due_now(ms(800), 3, WAIT),
            vec![(child(), Verdict::AskAgain)]
        );
        assert_eq!(c.due_now(ms(1200), 3, WAIT), vec![(child(), Verdict::Dead)]);
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn an_answer_ends_the_check_and_quiets_reports_for_a_while() {
        let mut c = ChildChecks::default();
        assert!(c.start(ms(0), child(), WAIT));
        c.heard(ms(100), child(), Duration::from_secs(1));
        assert!(c.due_now(ms(400), 3, WAIT).is_empty());
        assert_eq!(c.next_due(), None);
        assert!(!c.start(ms(500), child(), WAIT), "answered lately");
        assert!(c.due_now(ms(1100), 3, WAIT).is_empty());
        assert!(c.start(ms(1100), child(), WAIT), "the quiet spell ended");
    }

    #[test]
    fn the_transport_hearing_the_child_starts_the_count_over() {
        let mut c = ChildChecks::default();
        assert!(c.start(ms(0), child(), WAIT));
        assert_eq!(
            c.due_now(ms(400), 3, WAIT),
            vec![(child(), Verdict::AskAgain)]
        );
        c.heard_by_transport(child());
        // Three more requests go unanswered before the child is dead.
        assert_eq!(
            c.due_now(ms(800), 3, WAIT),
            vec![(child(), Verdict::AskAgain)]
        );
        assert_eq!(
            c.due_now(ms(1200), 3, WAIT),
            vec![(child(), Verdict::AskAgain)]
        );
        assert_eq!(
            c.due_now(ms(1600), 3, WAIT),
            vec![(child(), Verdict::AskAgain)]
        );
        assert_eq!(c.due_now(ms(2000), 3, WAIT), vec![(child(), Verdict::Dead)]);
    }
}
