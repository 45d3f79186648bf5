//! What viewers and browsers put in URLs: the broadcast's `from=`, anycast names in paths,
//! browser tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::app::broadcast::http::StartAt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(start) = text.parse::<StartAt>() {
        // The canonical form reads back as the same start.
        let again: StartAt = start.to_string().parse().expect("the canonical form parses");
        assert_eq!(again, start);
    }
    let _ = text.parse::<anycast_resolver::AnycastName>();
    let _ = anycast_resolver::AnycastName::from_dns(&text);
});
