//! A DNS query as the anycast front end reads it: the message (hickory), then the answer
//! decided for each question.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anycast_dns::{FixedTable, decide};
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

static TABLE: LazyLock<FixedTable> = LazyLock::new(|| {
    FixedTable::new(BTreeMap::from([(
        "talk%esm.internal".parse().expect("a name"),
        vec!["192.0.2.7:4433".parse().expect("an address")],
    )]))
});

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::from_vec(data) else {
        return;
    };
    for q in message.queries() {
        let _ = esm_fuzz::block_on(decide(
            &*TABLE,
            message.op_code(),
            q.name(),
            q.query_type(),
            q.query_class(),
            5,
        ));
    }
});
