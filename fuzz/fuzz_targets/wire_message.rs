//! Datagrams and control-frame bodies as every protocol decodes them: the wire envelope with
//! Narada's, Overcast's and the anycast resolver's messages, and media packets. A datagram decoded
//! with shared payloads (the runtime's way) must give what the ordinary decode gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::transport::frame::Frame;
use overlay_core::wire;

fuzz_target!(|data: &[u8]| {
    let plain = wire::decode::<narada::Message>(data);
    let shared = wire::shared::decode::<narada::Message>(&bytes::Bytes::copy_from_slice(data));
    assert_eq!(plain, shared);
    let _ = wire::decode::<overcast::Message>(data);
    let _ = wire::decode::<anycast_resolver::Message>(data);
    let _ = wire::decode::<Frame<narada::Message>>(data);
    let _ = wire::decode::<Frame<overcast::Message>>(data);
    let _ = wire::decode::<Frame<anycast_resolver::Message>>(data);
    let _ = media::MediaPacket::decode(data);
});
