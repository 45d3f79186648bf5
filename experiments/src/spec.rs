//! Spec strings: `kind:key=value,key=value` or `kind:PATH,key=value`.
//!
//! Topologies (`waxman:routers=1024,links=3145,seed=1`) and access links
//! (`fixed:up=10mbps,down=50mbps`) are chosen by such strings. Every key must be used: an unknown
//! or misspelt key is an error that lists the keys the kind accepts, never silently ignored.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use overlay_core::Bandwidth;

/// A spec string that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec {spec:?}: {problem}")]
pub struct SpecError {
    /// The whole spec string.
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A parsed spec whose parameters are consumed one by one.
#[derive(Debug, Clone)]
pub struct Spec {
    text: String,
    kind: String,
    path: Option<String>,
    params: BTreeMap<String, String>,
}

impl Spec {
    /// Parse `text`. When `takes_path` says the kind takes a file path, the first item after the
    /// colon is that path.
    pub fn parse(text: &str, takes_path: impl Fn(&str) -> bool) -> Result<Self, SpecError> {
        let err = |problem: String| SpecError {
            spec: text.to_owned(),
            problem,
        };
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (kind.trim(), rest),
            None => (text.trim(), ""),
        };
        if kind.is_empty() {
            return Err(err("it has no kind before the colon".into()));
        }
        let mut items = rest
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .peekable();
        let path = if takes_path(kind) {
            match items.next() {
                Some(p) if !p.contains('=') => Some(p.to_owned()),
                _ => {
                    return Err(err(format!(
                        "{kind} needs a file path first, as {kind}:PATH"
                    )));
                }
            }
        } else {
            None
        };
        let mut params = BTreeMap::new();
        for item in items {
            let Some((key, value)) = item.split_once('=') else {
                return Err(err(format!("{item:?} is not key=value")));
            };
            let (key, value) = (key.trim(), value.trim());
            if params.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(err(format!("key {key:?} is given twice")));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            kind: kind.to_owned(),
            path,
            params,
        })
    }

    /// The kind before the colon.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The file path, for kinds that take one.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The whole spec as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// An error about this spec.
    pub fn error(&self, problem: impl Into<String>) -> SpecError {
        SpecError {
            spec: self.text.clone(),
            problem: problem.into(),
        }
    }

    /// Take `key`, parsed as `T`, or `default` when absent.
    pub fn take<T: SpecValue>(&mut self, key: &str, default: T) -> Result<T, SpecError> {
        Ok(self.take_opt(key)?.unwrap_or(default))
    }

    /// Take `key`, parsed as `T`, if present.
    pub fn take_opt<T: SpecValue>(&mut self, key: &str) -> Result<Option<T>, SpecError> {
        let Some(raw) = self.params.remove(key) else {
            return Ok(None);
        };
        T::parse_value(&raw)
            .map(Some)
            .map_err(|why| self.error(format!("key {key:?}: {raw:?} is not {why}")))
    }

    /// Fail if any key was not taken; `accepted` lists the keys this kind knows.
    pub fn finish(self, accepted: &[&str]) -> Result<(), SpecError> {
        match self.params.keys().next() {
            None => Ok(()),
            Some(key) => Err(self.error(format!(
                "unknown key {key:?} for {}; accepted keys: {}",
                self.kind,
                accepted.join(", ")
            ))),
        }
    }
}

/// A value a spec parameter can hold.
pub trait SpecValue: Sized {
    /// Parse the text, or say what was expected.
    fn parse_value(text: &str) -> Result<Self, String>;
}

macro_rules! spec_value_from_str {
    ($($t:ty => $what:expr),* $(,)?) => {$(
        impl SpecValue for $t {
            fn parse_value(text: &str) -> Result<Self, String> {
                <$t>::from_str(text).map_err(|_| $what.to_owned())
            }
        }
    )*};
}

spec_value_from_str!(
    u64 => "a whole number",
    u32 => "a whole number",
    usize => "a whole number",
    bool => "true or false",
    String => "text",
);

impl SpecValue for f64 {
    fn parse_value(text: &str) -> Result<Self, String> {
        match Self::from_str(text) {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err("a finite number".to_owned()),
        }
    }
}

impl SpecValue for Bandwidth {
    fn parse_value(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| "a bandwidth such as 10mbps".to_owned())
    }
}

impl SpecValue for Duration {
    fn parse_value(text: &str) -> Result<Self, String> {
        parse_duration(text).ok_or_else(|| "a duration such as 1ms, 250us or 2s".to_owned())
    }
}

/// A command-line duration (clap's value parser): [`parse_duration`] with an error naming the
/// text.
pub fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("{text:?} is not a duration such as 300s or 5m"))
}

/// Parse `1ms`, `250us`, `1.5s`, `2m` (minutes); a bare number is milliseconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "" | "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return None,
    };
    (0.0..1e12)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_path(_: &str) -> bool {
        false
    }

    #[test]
    fn parses_keys_and_paths() {
        let mut s = Spec::parse("waxman:routers=10, links=20", no_path).unwrap();
        assert_eq!(s.kind(), "waxman");
        assert_eq!(s.take::<u64>("routers", 1).unwrap(), 10);
        assert_eq!(s.take::<u64>("seed", 7).unwrap(), 7);
        assert_eq!(s.take::<u64>("links", 1).unwrap(), 20);
        s.finish(&["routers", "links", "seed"]).unwrap();

        let mut s = Spec::parse("matrix:data/x.csv,fill=false", |k| k == "matrix").unwrap();
        assert_eq!(s.path(), Some("data/x.csv"));
        assert!(!s.take("fill", true).unwrap());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let mut s = Spec::parse("waxman:routers=10,lnks=20", no_path).unwrap();
        s.take::<u64>("routers", 1).unwrap();
        let err = s.finish(&["routers", "links"]).unwrap_err().to_string();
        assert!(
            err.contains("unknown key \"lnks\"") && err.contains("links"),
            "{err}"
        );

        let mut s = Spec::parse("waxman:routers=ten", no_path).unwrap();
        let err = s.take::<u64>("routers", 1).unwrap_err().to_string();
        assert!(err.contains("\"ten\" is not a whole number"), "{err}");

        assert!(Spec::parse("waxman:routers=1,routers=2", no_path).is_err());
        assert!(Spec::parse("waxman:routers", no_path).is_err());
        assert!(Spec::parse(":x=1", no_path).is_err());
        assert!(Spec::parse("topohub:seed=1", |_| true).is_err());
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("1ms"), Some(Duration::from_millis(1)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_millis(2)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1 fortnight"), None);
    }
}
