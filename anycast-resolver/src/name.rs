//! Anycast domain names, `Service%Domain`, and their mapping to ordinary DNS names.
//!
//! The service names the anycast group; the domain is an ordinary DNS name that locates the
//! group's authoritative resolver. For the DNS front end, `Service%Domain` is the DNS name
//! `service._anycast.domain`: the `_anycast` label (underscore names are never host names) keeps
//! anycast names apart from the domain's own hosts, and any resolver can forward the query.
//! Names are case-insensitive and kept in lower case.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The label that marks an anycast name inside the DNS.
pub const DNS_MARKER: &str = "_anycast";

/// The longest DNS name, in characters, without the final dot.
const MAX_DNS_NAME: usize = 253;

/// The longest DNS label.
const MAX_LABEL: usize = 63;

/// An anycast domain name: a group (`service`) within a `domain`. On the wire it is its text,
/// checked again when decoded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AnycastName {
    service: String,
    domain: String,
}

/// What is wrong with a name, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The text was empty.
    #[error("empty anycast name")]
    Empty,
    /// No `%` separates the service from the domain.
    #[error("{name:?}: no '%' between service and domain (expected Service%Domain)")]
    NoSeparator {
        /// The text.
        name: String,
    },
    /// More than one `%`.
    #[error("{name:?}: a second '%' at byte {at} (expected exactly one)")]
    SecondSeparator {
        /// The text.
        name: String,
        /// Where the second one is.
        at: usize,
    },
    /// A label (the service, or a part of the domain) is malformed.
    #[error("{name:?}: {part} {label:?} {reason}")]
    BadLabel {
        /// The text.
        name: String,
        /// `service` or `domain label`.
        part: &'static str,
        /// The label.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The DNS form would exceed 253 characters.
    #[error("{name:?}: {len} characters as a DNS name, more than {MAX_DNS_NAME}")]
    TooLong {
        /// The text.
        name: String,
        /// Its DNS length.
        len: usize,
    },
    /// A DNS name that is not of the form `service._anycast.domain`.
    #[error("{name:?}: not an anycast name (expected service.{DNS_MARKER}.domain)")]
    NotAnycast {
        /// The DNS name.
        name: String,
    },
}

/// Why `label` is not a host-name label (letters, digits, hyphens; not at either end), if not.
fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("is empty")
    } else if label.len() > MAX_LABEL {
        Some("is longer than 63 characters")
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Some("has a character other than a letter, digit or '-'")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("starts or ends with '-'")
    } else {
        None
    }
}

impl AnycastName {
    /// The name of group `service` in `domain` (checked as when parsed).
    pub fn new(service: &str, domain: &str) -> Result<Self, NameError> {
        format!("{service}%{domain}").parse()
    }

    /// The group.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The domain of the authoritative resolver.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The DNS form, `service._anycast.domain` (no final dot).
    pub fn to_dns(&self) -> String {
        format!("{}.{DNS_MARKER}.{}", self.service, self.domain)
    }

    /// The anycast name a DNS name stands for (a final dot is allowed).
    pub fn from_dns(dns: &str) -> Result<Self, NameError> {
        let trimmed = dns.strip_suffix('.').unwrap_or(dns);
        let lower = trimmed.to_ascii_lowercase();
        let mut parts = lower.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(service), Some(DNS_MARKER), Some(domain)) => {
                Self::new(service, domain).map_err(|e| match e {
                    NameError::BadLabel {
                        part,
                        label,
                        reason,
                        ..
                    } => NameError::BadLabel {
                        name: dns.to_owned(),
                        part,
                        label,
                        reason,
                    },
                    other => other,
                })
            }
            _ => Err(NameError::NotAnycast {
                name: dns.to_owned(),
            }),
        }
    }
}

impl FromStr for AnycastName {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let Some(first) = text.find('%') else {
            return Err(NameError::NoSeparator {
                name: text.to_owned(),
            });
        };
        if let Some(second) = text[first + 1..].find('%') {
            return Err(NameError::SecondSeparator {
                name: text.to_owned(),
                at: first + 1 + second,
            });
        }
        let service = text[..first].to_ascii_lowercase();
        let after = &text[first + 1..];
        let domain = after
            .strip_suffix('.')
            .unwrap_or(after)
            .to_ascii_lowercase();
        let bad = |part, label: &str, reason| NameError::BadLabel {
            name: text.to_owned(),
            part,
            label: label.to_owned(),
            reason,
        };
        if let Some(reason) = label_problem(&service) {
            return Err(bad("service", &service, reason));
        }
        for label in domain.split('.') {
            if let Some(reason) = label_problem(label) {
                return Err(bad("domain label", label, reason));
            }
        }
        let name = Self { service, domain };
        let len = name.to_dns().len();
        if len > MAX_DNS_NAME {
            return Err(NameError::TooLong {
                name: text.to_owned(),
                len,
            });
        }
        Ok(name)
    }
}

impl TryFrom<String> for AnycastName {
    type Error = NameError;

    fn try_from(text: String) -> Result<Self, NameError> {
        text.parse()
    }
}

impl From<AnycastName> for String {
    fn from(name: AnycastName) -> Self {
        name.to_string()
    }
}

impl fmt::Display for AnycastName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%{}", self.service, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_parse_print_and_map_to_dns() {
        let name: AnycastName = "Conference%Example.ORG".parse().unwrap();
        assert_eq!(name.service(), "conference");
        assert_eq!(name.domain(), "example.org");
        assert_eq!(name.to_string(), "conference%example.org");
        assert_eq!(name.to_dns(), "conference._anycast.example.org");
        assert_eq!(
            AnycastName::from_dns("conference._ANYCAST.example.org.").unwrap(),
            name
        );
    }

    #[test]
    fn malformed_names_say_what_and_where() {
        assert_eq!("".parse::<AnycastName>(), Err(NameError::Empty));
        assert!(matches!(
            "web.example.org".parse::<AnycastName>(),
            Err(NameError::NoSeparator { .. })
        ));
        assert!(matches!(
            "a%b%c".parse::<AnycastName>(),
            Err(NameError::SecondSeparator { at: 3, .. })
        ));
        let e = "we b%example.org".parse::<AnycastName>().unwrap_err();
        assert!(e.to_string().contains("service \"we b\""), "{e}");
        let e = "web%example..org".parse::<AnycastName>().unwrap_err();
        assert!(e.to_string().contains("domain label \"\" is empty"), "{e}");
        let e = "web%-x.org".parse::<AnycastName>().unwrap_err();
        assert!(e.to_string().contains("starts or ends"), "{e}");
        let long = format!("web%{}", vec!["a".repeat(60); 5].join("."));
        assert!(matches!(
            long.parse::<AnycastName>(),
            Err(NameError::TooLong { .. })
        ));
        assert!(matches!(
            AnycastName::from_dns("www.example.org"),
            Err(NameError::NotAnycast { .. })
        ));
        assert!(matches!(
            AnycastName::from_dns("b@d._anycast.example.org"),
            Err(NameError::BadLabel { .. })
        ));
    }

    proptest! {
        #[test]
        fn parsing_is_total_and_round_trips(text in ".{0,80}") {
            if let Ok(name) = text.parse::<AnycastName>() {
                prop_assert_eq!(name.to_string().parse::<AnycastName>(), Ok(name.clone()));
                prop_assert_eq!(AnycastName::from_dns(&name.to_dns()), Ok(name));
            }
            let _ = AnycastName::from_dns(&text);
        }
    }
}
