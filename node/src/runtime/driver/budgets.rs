//! The driver's shares of this member's access link: the download split among the peers
//! sending it media (told to them), the upload split among its outgoing links (their pacers'
//! caps), and the operator's caps on single links.

use overlay_core::{NodeId, Protocol};

use super::{Driver, MAX_LINK_LIMITS};
use crate::runtime::connection::Peer;
use crate::runtime::{LinkLimitOutcome, pacing, receive_budget, upload_budget};
use crate::transport::frame::Frame;

impl<P> Driver<P>
where
    P: Protocol + Send + 'static,
    P::Message: Send + 'static,
    P::Command: Send + 'static,
    P::Event: Send + 'static,
{
    /// With a known download, tell each peer that sent media since the last tick the share of
    /// the download it may fill (see `receive_budget`).
    pub(super) fn send_shares(&mut self) {
        let now = self.clock.now();
        let Some(download) = self.options.download else {
            return;
        };
        let since = self.shares_at.replace(now);
        let Some(elapsed) = since.map(|t| now.saturating_since(t).as_secs_f64()) else {
            return;
        };
        let senders: Vec<(NodeId, receive_budget::Sending)> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| !p.received_media.is_empty())
            .map(|(&id, p)| (id, p.received_media.take(elapsed)))
            .collect();
        let sending: Vec<receive_budget::Sending> = senders.iter().map(|&(_, s)| s).collect();
        let total = download.bps_f64() * receive_budget::HEADROOM;
        for ((peer, _), share) in senders.iter().zip(receive_budget::shares(total, &sending)) {
            self.send_frame(*peer, &Frame::ReceiveShare { bps: share as u64 });
        }
    }

    /// The operator caps (or frees) what goes to `peer`.
    pub(super) fn limit_link(&mut self, peer: NodeId, bps: Option<u64>) -> LinkLimitOutcome {
        let outcome = match bps {
            Some(bps)
                if self.link_limits.len() < MAX_LINK_LIMITS
                    || self.link_limits.contains_key(&peer) =>
            {
                let bps = bps.max(pacing::FLOOR_BPS as u64);
                self.link_limits.insert(peer, bps);
                LinkLimitOutcome::Capped(bps)
            }
            Some(_) => return LinkLimitOutcome::TooMany,
            None => {
                self.link_limits.remove(&peer);
                LinkLimitOutcome::Lifted
            }
        };
        if let Some(p) = self.peers.get_mut(&peer) {
            p.pacer.set_operator_limit(bps.map(|b| b as f64));
        }
        outcome
    }

    /// With a known upload, cap each linked peer's pacer at its share of the upload (see
    /// `upload_budget`), by what was released to it since the last split.
    pub(super) fn split_upload(&mut self) {
        let now = self.clock.now();
        let Some(upload) = self.options.upload else {
            return;
        };
        let since = self.upload_split_at.replace(now);
        let Some(elapsed) = since.map(|t| now.saturating_since(t).as_secs_f64()) else {
            return;
        };
        let mut links: Vec<(&mut Peer, receive_budget::Sending)> = self
            .peers
            .values_mut()
            .filter(|p| p.link || !p.sent_media.is_empty())
            .map(|p| {
                let sending = p.sent_media.take(elapsed);
                (p, sending)
            })
            .collect();
        let sending: Vec<receive_budget::Sending> = links.iter().map(|(_, s)| *s).collect();
        let shares = upload_budget::shares(upload.bps_f64(), &sending);
        for ((p, _), share) in links.iter_mut().zip(shares) {
            p.pacer.set_upload_share(Some(share));
        }
    }
}
