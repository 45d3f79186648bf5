//! The Prometheus text exposition format (version 0.0.4), written once for every application's
//! `/metrics`: families with their help and type lines, labelled samples, label values escaped.

use std::fmt::Write;

use crate::runtime::TransportSnapshot;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What a family's samples mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only grows (its name ends in `_total`).
    Counter,
}

/// A page of metrics being written.
#[derive(Debug, Default)]
pub struct MetricsPage {
    out: String,
}

impl MetricsPage {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// One family with one unlabelled sample.
    pub fn single(&mut self, kind: Kind, name: &str, help: &str, value: f64) -> &mut Self {
        self.family(kind, name, help, None, [(String::new(), value)])
    }

    /// One family with a sample per row, each labelled `label="VALUE"`.
    pub fn labelled<L: AsRef<str>>(
        &mut self,
        kind: Kind,
        name: &str,
        help: &str,
        label: &str,
        rows: impl IntoIterator<Item = (L, f64)>,
    ) -> &mut Self {
        self.family(kind, name, help, Some(label), rows)
    }

    fn family<L: AsRef<str>>(
        &mut self,
        kind: Kind,
        name: &str,
        help: &str,
        label: Option<&str>,
        rows: impl IntoIterator<Item = (L, f64)>,
    ) -> &mut Self {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (value_of_label, value) in rows {
            match label {
                Some(label) => {
                    let _ = writeln!(
                        self.out,
                        "{name}{{{label}=\"{}\"}} {value}",
                        escape_label(value_of_label.as_ref())
                    );
                }
                None => {
                    let _ = writeln!(self.out, "{name} {value}");
                }
            }
        }
        self
    }

    /// The page's text.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

/// Adds the transport's families to a page: RTT per peer and every counter.
pub fn write_transport(page: &mut MetricsPage, transport: &TransportSnapshot) {
    let c = transport.counters;
    page.labelled(
        Kind::Gauge,
        "esm_peer_rtt_ms",
        "QUIC smoothed RTT per peer, milliseconds.",
        "peer",
        transport.peers.iter().map(|p| (p.id.as_str(), p.rtt_ms)),
    )
    .labelled(
        Kind::Counter,
        "esm_transport_total",
        "Transport counters.",
        "counter",
        [
            ("admissions", c.admissions),
            ("admissions_refused", c.admissions_refused),
            ("bad_frames", c.bad_frames),
            ("bad_datagrams", c.bad_datagrams),
            ("messages_sent", c.messages_sent),
            ("messages_received", c.messages_received),
            ("sends_dropped", c.sends_dropped),
            ("sends_shaped", c.sends_shaped),
            ("dials_failed", c.dials_failed),
            ("address_asks_sent", c.address_asks_sent),
            ("address_asks_answered", c.address_asks_answered),
            ("measurements_unsupported", c.measurements_unsupported),
        ]
        .map(|(k, v)| (k, v as f64)),
    );
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text as the format wants it: backslash and line feed escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_help_type_and_escaped_labelled_samples() {
        let text = MetricsPage::new()
            .single(Kind::Gauge, "esm_members", "Members.", 3.0)
            .labelled(
                Kind::Counter,
                "esm_transport_total",
                "Counters.",
                "counter",
                [("a\"b\\c\nd", 7.0), ("x", 0.5)],
            )
            .finish();
        assert_eq!(
            text,
            "# HELP esm_members Members.\n# TYPE esm_members gauge\nesm_members 3\n\
             # HELP esm_transport_total Counters.\n# TYPE esm_transport_total counter\n\
             esm_transport_total{counter=\"a\\\"b\\\\c\\nd\"} 7\nesm_transport_total{counter=\"x\"} 0.5\n"
        );
    }
}
