//! Watching the stream from the parent, so a dead parent is found in about a second instead of
//! the parent timeout (see [`crate::OvercastConfig::silence_check_in_after`]).
//!
//! While content flows, a child knows how often it arrives. When it stops for
//! `silence_check_in_after` (or, if longer, twice the smoothed gap between arrivals plus four of
//! its deviations: a timeout for the next arrival as RFC 6298 sets one for an acknowledgement,
//! so a bursty stream is not taken for silent between bursts), the child checks in with
//! its parent at once, and again after each check-in the parent leaves unanswered. Only when
//! `silent_parent_check_ins` check-ins in a row went unanswered, with nothing heard from the
//! parent meanwhile, is the parent lost. A parent that answers is left alone until its stream
//! flows again: the silence is further up, and the child of the dead node finds it. A
//! transport-level sign of life (packets from the parent, whose messages may be held up behind
//! a loss) starts the count over without ending the suspicion: the runtime reports it twice a
//! second, so the first report after a death covers packets sent before it.

use std::time::Duration;

use overlay_core::{NodeId, Time};
use probe::ArrivalPace;

/// What the watch's settings are, taken from the node's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WatchRule {
    /// The shortest silence that draws a check-in, and the shortest wait for its answer.
    pub(super) after: Duration,
    /// Unanswered check-ins in a row after which the parent is lost.
    pub(super) lost_after: u32,
    /// Gaps this long or longer are pauses of the stream, not its pace (and a longer silence
    /// is the parent timeout's to judge).
    pub(super) pause: Duration,
}

/// Where the watch stands on the current silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Silence {
    /// Content flows (or never did): nothing to do until it stops.
    #[default]
    None,
    /// The stream stopped: `unanswered` check-ins went to the parent and nothing was heard since.
    Suspected {
        /// Check-ins sent since the parent was last heard.
        unanswered: u32,
    },
    /// The parent answered during this silence: left alone until content comes again.
    Answered,
}

/// What the node does when the watch's timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WatchAction {
    /// Nothing now; look again then (`None`: not until content arrives).
    Wait(Option<Time>),
    /// Check in with the parent now, and look again then.
    CheckIn(Time),
    /// The parent is lost.
    Lost(NodeId),
}

/// The watch over the stream from the current parent.
#[derive(Clone, Debug, Default)]
pub(super) struct ParentWatch {
    /// The parent the rest is about.
    parent: Option<NodeId>,
    /// The pace of content from it.
    pace: ArrivalPace,
    silence: Silence,
}

impl ParentWatch {
    /// Content came from `parent` at `now`. Returns when the watch should next look, if its
    /// timer must be armed.
    pub(super) fn on_data(&mut self, now: Time, parent: NodeId, rule: &WatchRule) -> Time {
        if self.parent != Some(parent) {
            *self = Self {
                parent: Some(parent),
                ..Self::default()
            };
        }
        self.pace.arrived(now, rule.pause);
        self.silence = Silence::None;
        now + self.limit(rule)
    }

    /// A message came from `peer`: if it is the watched parent, it answered; the silence is
    /// further up.
    pub(super) fn heard(&mut self, peer: NodeId) {
        if self.parent == Some(peer)
            && let Silence::Suspected { .. } = self.silence
        {
            self.silence = Silence::Answered;
        }
    }

    /// The transport heard from `peer` since its last report: if it is the watched parent,
    /// the check-ins so far may have been held up on the way, so the count starts over. The
    /// check-ins go on: the report may cover packets that came before the parent died (the
    /// runtime reports twice a second), so it cannot end the suspicion as an answer does.
    pub(super) fn heard_by_transport(&mut self, peer: NodeId) {
        if self.parent == Some(peer)
            && let Silence::Suspected { .. } = self.silence
        {
            self.silence = Silence::Suspected { unanswered: 0 };
        }
    }

    /// How long the stream may stop before it counts as silent.
    fn limit(&self, rule: &WatchRule) -> Duration {
        self.pace.overdue_after(rule.after)
    }

    /// The watch's timer fired at `now`; the node's parent is `parent`, at round-trip time
    /// `rtt` as last measured.
    pub(super) fn on_timer(
        &mut self,
        now: Time,
        parent: Option<NodeId>,
        rtt: Option<Duration>,
        rule: &WatchRule,
    ) -> WatchAction {
        let (Some(parent), Some(last)) = (parent, self.pace.last()) else {
            return WatchAction::Wait(None);
        };
        if self.parent != Some(parent) {
            // A new parent sent nothing yet: its first content arms the watch.
            *self = Self::default();
            return WatchAction::Wait(None);
        }
        // Each check-in is given the floor, or two round trips if longer, to be answered.
        let answer_within = rtt.map_or(rule.after, |r| (r * 2).max(rule.after));
        match self.silence {
            Silence::Answered => WatchAction::Wait(None),
            Silence::Suspected { unanswered } if unanswered >= rule.lost_after => {
                *self = Self::default();
                WatchAction::Lost(parent)
            }
            Silence::Suspected { unanswered } => {
                self.silence = Silence::Suspected {
                    unanswered: unanswered + 1,
                };
                WatchAction::CheckIn(now + answer_within)
            }
            Silence::None => {
                let silent_at = last + self.limit(rule);
                if now < silent_at {
                    return WatchAction::Wait(Some(silent_at));
                }
                self.silence = Silence::Suspected { unanswered: 1 };
                WatchAction::CheckIn(now + answer_within)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: WatchRule = WatchRule {
        after: Duration::from_millis(200),
        lost_after: 3,
        pause: Duration::from_secs(2),
    };

    fn ms(t: u64) -> Time {
        Time::ZERO + Duration::from_millis(t)
    }

    fn parent() -> NodeId {
        NodeId::from_index(7)
    }

    /// A watch that saw content every 10 ms until 1 s.
    fn flowing() -> ParentWatch {
        let mut w = ParentWatch::default();
        for t in (0..=1000).step_by(10) {
            w.on_data(ms(t), parent(), &RULE);
        }
        w
    }

    #[test]
    fn a_parent_that_never_answers_is_lost_after_the_floor_and_three_check_ins() {
        let mut w = flowing();
        // Before the floor: wait until it.
        assert_eq!(
            w.on_timer(ms(1100), Some(parent()), None, &RULE),
            WatchAction::Wait(Some(ms(1200)))
        );
        assert_eq!(
            w.on_timer(ms(1200), Some(parent()), None, &RULE),
            WatchAction::CheckIn(ms(1400))
        );
        assert_eq!(
            w.on_timer(ms(1400), Some(parent()), None, &RULE),
            WatchAction::CheckIn(ms(1600))
        );
        assert_eq!(
            w.on_timer(ms(1600), Some(parent()), None, &RULE),
            WatchAction::CheckIn(ms(1800))
        );
        assert_eq!(
            w.on_timer(ms(1800), Some(parent()), None, &RULE),
            WatchAction::Lost(parent())
        );
    }

    #[test]
    fn a_parent_that_answers_is_left_alone_until_its_stream_flows_again() {
        let mut w = flowing();
        assert!(matches!(
            w.on_timer(ms(1200), Some(parent()), None, &RULE),
            WatchAction::CheckIn(_)
        ));
        w.heard(parent());
        assert_eq!(
            w.on_timer(ms(1400), Some(parent()), None, &RULE),
            WatchAction::Wait(None)
        );
        // Content again, then silence again: a new suspicion.
        assert_eq!(w.on_data(ms(5000), parent(), &RULE), ms(5200));
        assert!(matches!(
            w.on_timer(ms(5200), Some(parent()), None, &RULE),
            WatchAction::CheckIn(_)
        ));
    }

    #[test]
    fn check_ins_wait_two_round_trips_on_a_long_path() {
        let mut w = flowing();
        let rtt = Some(Duration::from_millis(300));
        assert_eq!(
            w.on_timer(ms(1200), Some(parent()), rtt, &RULE),
            WatchAction::CheckIn(ms(1800))
        );
    }

    #[test]
    fn another_parent_or_none_is_not_suspected() {
        let mut w = flowing();
        assert_eq!(
            w.on_timer(ms(1200), Some(NodeId::from_index(8)), None, &RULE),
            WatchAction::Wait(None)
        );
        let mut w = flowing();
        assert_eq!(
            w.on_timer(ms(1200), None, None, &RULE),
            WatchAction::Wait(None)
        );
        // The transport heard from the parent: the count starts over, the check-ins go on.
        let mut w = flowing();
        w.on_timer(ms(1200), Some(parent()), None, &RULE);
        w.on_timer(ms(1400), Some(parent()), None, &RULE);
        w.on_timer(ms(1600), Some(parent()), None, &RULE);
        w.heard_by_transport(parent());
        for t in [1800, 2000, 2200] {
            assert!(matches!(
                w.on_timer(ms(t), Some(parent()), None, &RULE),
                WatchAction::CheckIn(_)
            ));
        }
        assert_eq!(
            w.on_timer(ms(2400), Some(parent()), None, &RULE),
            WatchAction::Lost(parent())
        );
        // Heard from someone else: still suspected.
        let mut w = flowing();
        w.on_timer(ms(1200), Some(parent()), None, &RULE);
        w.heard(NodeId::from_index(8));
        assert!(matches!(
            w.on_timer(ms(1400), Some(parent()), None, &RULE),
            WatchAction::CheckIn(_)
        ));
    }
}
