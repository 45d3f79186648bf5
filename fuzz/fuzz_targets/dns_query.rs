//! A DNS query as the anycast front end reads it: the message (hickory), then the answer
//! decided for each question.
#![no_main]

use anycast_dns::{Lookup, decide};
use anycast_resolver::AnycastName;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fn source(name: &AnycastName) -> Lookup {
    if name.service() == "talk" {
        Lookup::Server("192.0.2.7".parse().expect("an address"))
    } else {
        Lookup::Unknown
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::from_vec(data) else {
        return;
    };
    for q in message.queries() {
        let _ = decide(
            &source,
            message.op_code(),
            &q.name().to_ascii(),
            q.query_type(),
            q.query_class(),
        );
    }
});
