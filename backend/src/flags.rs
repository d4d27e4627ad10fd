//! Runtime switches for every optimisation. Off reproduces the old backend's behaviour,
//! on is the fix; one binary runs both ways so a load test can compare them in one run.
//! Whatever the flags, the API answers the same: only cost and latency differ.

use std::collections::BTreeMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum FlagError {
    #[error("BRAIN2_PROFILE must be `optimized` or `baseline`, got {0:?}")]
    UnknownProfile(String),
    #[error("{name} must be `on` or `off`, got {value:?}")]
    InvalidValue { name: String, value: String },
}

macro_rules! flags {
    ($($(#[doc = $doc:literal])* $name:ident),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Flags {
            $($(#[doc = $doc])* pub $name: bool,)+
        }

        impl Flags {
            /// Every optimisation on.
            pub const OPTIMIZED: Self = Self { $($name: true,)+ };
            /// Every optimisation off: the old behaviour.
            pub const BASELINE: Self = Self { $($name: false,)+ };

            /// Flag names (as in `BRAIN2_FLAG_<NAME>`, lower-case) and their values.
            pub fn entries(&self) -> BTreeMap<&'static str, bool> {
                BTreeMap::from([$((stringify!($name), self.$name),)+])
            }

            fn set(&mut self, name: &str, value: bool) -> bool {
                match name {
                    $(stringify!($name) => self.$name = value,)+
                    _ => return false,
                }
                true
            }
        }
    };
}

flags! {
    /// One SDK client per process with kept-alive connections (off: new config and clients per request).
    client_reuse,
    /// BatchWriteItem of 25 with retried unprocessed items (off: one PutItem/DeleteItem per item).
    batch_writes,
    /// BatchGetItem of 100 (off: one GetItem per id).
    batch_reads,
    /// Batch chunks run concurrently, bounded (off: one after another).
    parallel_chunks,
    /// Graph data through a Query on the user's partition (off: a filtered Scan of the table).
    query_not_scan,
    /// ProjectionExpression with only the attributes a response needs (off: all attributes).
    projections,
    /// User-scoped in-process cache of node and graph reads, invalidated by the user's writes.
    read_cache,
    /// In-process adjacency lists, invalidated on edge and node changes.
    adjacency_cache,
    /// gzip/br responses above 1 KB when the client accepts them.
    compression,
    /// Events handed to a background publisher in batches of 10 (off: one inline PutEvents per event).
    async_events,
    /// Deletes mark nodes deleted in one write and clean up asynchronously (off: cascade in the request).
    soft_delete,
}

/// The one vocabulary of on/off settings: `on`, `true`, `1` and `off`, `false`, `0`.
pub fn parse_switch(raw: &str) -> Option<bool> {
    match raw {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    }
}

impl Default for Flags {
    fn default() -> Self {
        Self::OPTIMIZED
    }
}

impl Flags {
    /// `BRAIN2_PROFILE` (default `optimized`), then `BRAIN2_FLAG_<NAME>=on|off` overrides.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, FlagError> {
        let mut flags = match lookup("BRAIN2_PROFILE").as_deref() {
            None | Some("optimized") => Self::OPTIMIZED,
            Some("baseline") => Self::BASELINE,
            Some(other) => return Err(FlagError::UnknownProfile(other.to_owned())),
        };
        for name in Self::OPTIMIZED.entries().into_keys() {
            let variable = format!("BRAIN2_FLAG_{}", name.to_ascii_uppercase());
            if let Some(value) = lookup(&variable) {
                let Some(on) = parse_switch(&value.to_ascii_lowercase()) else {
                    return Err(FlagError::InvalidValue { name: variable, value });
                };
                flags.set(name, on);
            }
        }
        Ok(flags)
    }

    /// A copy with one flag changed; `None` for an unknown name.
    pub fn with(mut self, name: &str, value: bool) -> Option<Self> {
        self.set(name, value).then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Result<Flags, FlagError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Flags::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn profiles_and_overrides() {
        assert_eq!(flags(&[]).unwrap(), Flags::OPTIMIZED);
        assert_eq!(flags(&[("BRAIN2_PROFILE", "baseline")]).unwrap(), Flags::BASELINE);
        let mixed = flags(&[("BRAIN2_PROFILE", "baseline"), ("BRAIN2_FLAG_BATCH_WRITES", "on")]).unwrap();
        assert!(mixed.batch_writes);
        assert!(!mixed.batch_reads);
        let off = flags(&[("BRAIN2_FLAG_COMPRESSION", "off")]).unwrap();
        assert!(!off.compression && off.read_cache);
    }

    #[test]
    fn rejects_unknown_values() {
        assert!(matches!(flags(&[("BRAIN2_PROFILE", "fast")]), Err(FlagError::UnknownProfile(_))));
        assert!(matches!(flags(&[("BRAIN2_FLAG_SOFT_DELETE", "maybe")]), Err(FlagError::InvalidValue { .. })));
    }

    #[test]
    fn every_flag_is_listed_and_settable() {
        let names: Vec<&str> = Flags::OPTIMIZED.entries().into_keys().collect();
        assert_eq!(names.len(), 11);
        for name in names {
            let flipped = Flags::OPTIMIZED.with(name, false).unwrap();
            assert_eq!(flipped.entries().values().filter(|on| !**on).count(), 1, "{name}");
        }
        assert!(Flags::OPTIMIZED.with("nonsense", false).is_none());
    }
}
