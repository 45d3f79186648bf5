//! When a stream that stopped growing counts as ended for a viewer: after the idle time with
//! no growth *under the same parent*. A relay whose parent dies hears nothing until the
//! parent's timeout and its re-attachment; that silence is the tree repairing itself, not the
//! end of the broadcast, so every change of parent starts the idle time again (a viewer of a
//! relay whose parent was killed sees a pause, not the end of its response).

use std::time::Duration;

use overlay_core::NodeId;
use tokio::sync::watch;

/// Counts this node's changes of parent (losing one counts too), for [`IdleClock`]s.
#[derive(Debug)]
pub struct ParentChanges {
    last: Option<NodeId>,
    changes: watch::Sender<u64>,
}

impl ParentChanges {
    /// No change yet; the node's parent starts as none.
    pub fn new() -> Self {
        Self {
            last: None,
            changes: watch::Sender::new(0),
        }
    }

    /// The node's parent now (called as often as the caller likes; only a change counts).
    pub fn observe(&mut self, parent: Option<NodeId>) {
        if parent != self.last {
            self.last = parent;
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// A clock that waits `idle_end` for growth, restarted by the changes counted here.
    pub fn clock(&self, idle_end: Duration) -> IdleClock {
        IdleClock {
            changes: self.changes.subscribe(),
            idle_end,
        }
    }
}

impl Default for ParentChanges {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for a stream to grow, giving up after the idle time without growth and without a
/// change of parent.
#[derive(Clone, Debug)]
pub struct IdleClock {
    changes: watch::Receiver<u64>,
    idle_end: Duration,
}

impl IdleClock {
    /// A clock no parent change restarts.
    #[cfg(test)]
    fn fixed(idle_end: Duration) -> Self {
        let (tx, changes) = watch::channel(0);
        // The receiver sees the sender gone and never wakes for it.
        drop(tx);
        Self { changes, idle_end }
    }

    /// `true` once `grown` changes; `false` when it has not for the idle time since the call
    /// or since the last change of parent, or when its sender is gone.
    pub async fn wait<T>(&mut self, grown: &mut watch::Receiver<T>) -> bool {
        self.changes.borrow_and_update();
        let mut parents_open = true;
        loop {
            let idle = tokio::time::sleep(self.idle_end);
            tokio::pin!(idle);
            loop {
                tokio::select! {
                    g = grown.changed() => return g.is_ok(),
                    c = self.changes.changed(), if parents_open => {
                        if c.is_err() {
                            parents_open = false;
                            continue;
                        }
                        break;
                    }
                    () = &mut idle => return false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId::from_bytes([n; 32])
    }

    #[tokio::test(start_paused = true)]
    async fn growth_wakes_the_clock_and_silence_ends_it_after_the_idle_time() {
        let (grow, mut grown) = watch::channel(0u64);
        let mut clock = IdleClock::fixed(Duration::from_secs(3));
        let start = tokio::time::Instant::now();
        let waiter = tokio::spawn(async move {
            let first = clock.wait(&mut grown).await;
            let second = clock.wait(&mut grown).await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        grow.send_replace(1);
        let (first, second) = waiter.await.unwrap();
        assert!(first);
        assert!(!second);
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_of_parent_starts_the_idle_time_again() {
        let (_grow, mut grown) = watch::channel(0u64);
        let mut parents = ParentChanges::new();
        parents.observe(Some(id(1)));
        let mut clock = parents.clock(Duration::from_secs(3));
        let start = tokio::time::Instant::now();
        let waiter = tokio::spawn(async move { clock.wait(&mut grown).await });
        // Two seconds of silence, then the parent is lost and a new one found: the viewer
        // waits three more seconds from the new parent, not one.
        tokio::time::sleep(Duration::from_secs(2)).await;
        parents.observe(None);
        tokio::time::sleep(Duration::from_millis(500)).await;
        parents.observe(Some(id(2)));
        // The same parent again is no change.
        tokio::time::sleep(Duration::from_secs(1)).await;
        parents.observe(Some(id(2)));
        assert!(!waiter.await.unwrap());
        assert_eq!(start.elapsed(), Duration::from_millis(5_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_gone_store_ends_the_wait_at_once() {
        let (grow, mut grown) = watch::channel(0u64);
        drop(grow);
        let mut clock = IdleClock::fixed(Duration::from_secs(3));
        let start = tokio::time::Instant::now();
        assert!(!clock.wait(&mut grown).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
