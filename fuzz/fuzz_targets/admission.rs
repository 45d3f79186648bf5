//! What a stranger controls in admission: the other side's SPAKE2 message and confirmation,
//! and invite tokens given to `--invite`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use node::transport::admission::{GroupSecret, Role};
use node::transport::invite::Invite;
use overlay_core::NodeId;

fn secret() -> &'static GroupSecret {
    static S: OnceLock<GroupSecret> = OnceLock::new();
    S.get_or_init(|| {
        GroupSecret::new("fuzz", b"plate-ridge-vocal-mango-swift").expect("a strong secret")
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (pake, confirm) = data.split_at(split);
    for role in [Role::Dialer, Role::Acceptor] {
        let (state, _) = secret().start(role, NodeId::from_index(1), NodeId::from_index(2));
        if let Ok(c) = state.finish(pake, b"channel") {
            let _ = c.verify(confirm);
        }
    }
    let _ = Invite::parse(&String::from_utf8_lossy(data));
    let _ = secret().verify_browser_token(NodeId::from_index(1), &String::from_utf8_lossy(data));
});
