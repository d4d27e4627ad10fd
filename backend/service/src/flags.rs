//! Runtime switches for every optimisation. Off reproduces the old backend's behaviour,
//! on is the fix; one binary runs both ways so a load test can compare them in one run.
//! Whatever the flags, the API answers the same: only cost and latency differ.

use std::collections::BTreeMap;

use clap::{ArgAction, Args, ValueEnum};

use crate::config::switch;

/// Where the flags start before any `BRAIN2_FLAG_<NAME>` override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Every optimisation on.
    Optimized,
    /// Every optimisation off: the old backend's behaviour.
    Baseline,
}

/// How domain events leave a write for the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventDelivery {
    /// One PutEvents per event before the response: the old backend's behaviour.
    Inline,
    /// The request enqueues its events; a task of the process sends them in batches of 10.
    /// Fast, but a process killed before its flush loses what is still queued.
    Background,
    /// The request writes to the table only; a consumer of the table's stream publishes the
    /// events (in batches of 10). A write and its event are one durable fact.
    Outbox,
}

impl EventDelivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::Background => "background",
            Self::Outbox => "outbox",
        }
    }
}

macro_rules! flags {
    ($($(#[doc = $doc:literal])* $name:ident => $long:literal, $env:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Flags {
            $($(#[doc = $doc])* pub $name: bool,)+
            /// How events reach the bus (`BRAIN2_EVENT_DELIVERY`).
            pub event_delivery: EventDelivery,
        }

        impl Flags {
            /// Every optimisation on.
            pub const OPTIMIZED: Self = Self { $($name: true,)+ event_delivery: OPTIMIZED_EVENT_DELIVERY };
            /// Every optimisation off: the old behaviour.
            pub const BASELINE: Self = Self { $($name: false,)+ event_delivery: EventDelivery::Inline };

            /// On/off flag names (as in `BRAIN2_FLAG_<NAME>`, lower-case) and their values.
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

        /// The flags as settings: a profile, then one optional override per flag.
        #[derive(Debug, Clone, PartialEq, Eq, Args)]
        pub struct FlagSettings {
            /// Optimisation profile the flags start from.
            #[arg(long, env = "BRAIN2_PROFILE", value_enum, default_value_t = Profile::Optimized)]
            pub profile: Profile,
            $(
                $(#[doc = $doc])*
                #[arg(long = $long, env = $env, value_name = "on|off", value_parser = switch, action = ArgAction::Set)]
                pub $name: Option<bool>,
            )+
            /// How domain events reach the bus; the profile's choice unless set.
            #[arg(long, env = "BRAIN2_EVENT_DELIVERY", value_enum)]
            pub event_delivery: Option<EventDelivery>,
        }

        impl FlagSettings {
            /// The profile's flags with the overrides applied.
            pub fn resolve(&self) -> Flags {
                let mut flags = match self.profile {
                    Profile::Optimized => Flags::OPTIMIZED,
                    Profile::Baseline => Flags::BASELINE,
                };
                $(if let Some(on) = self.$name { flags.$name = on; })+
                if let Some(delivery) = self.event_delivery {
                    flags.event_delivery = delivery;
                }
                flags
            }
        }

        impl From<Flags> for FlagSettings {
            /// Settings that resolve to exactly `flags`, whatever the profile.
            fn from(flags: Flags) -> Self {
                Self {
                    profile: Profile::Optimized,
                    $($name: Some(flags.$name),)+
                    event_delivery: Some(flags.event_delivery),
                }
            }
        }
    };
}

flags! {
    /// One SDK client per process with kept-alive connections (off: new config and clients per request).
    client_reuse => "flag-client-reuse", "BRAIN2_FLAG_CLIENT_REUSE";
    /// BatchWriteItem of 25 with retried unprocessed items (off: one PutItem/DeleteItem per item).
    batch_writes => "flag-batch-writes", "BRAIN2_FLAG_BATCH_WRITES";
    /// BatchGetItem of 100 (off: one GetItem per id).
    batch_reads => "flag-batch-reads", "BRAIN2_FLAG_BATCH_READS";
    /// Batch chunks run concurrently, bounded (off: one after another).
    parallel_chunks => "flag-parallel-chunks", "BRAIN2_FLAG_PARALLEL_CHUNKS";
    /// Graph data through a Query on the user's partition (off: a filtered Scan of the table).
    query_not_scan => "flag-query-not-scan", "BRAIN2_FLAG_QUERY_NOT_SCAN";
    /// ProjectionExpression with only the attributes a response needs (off: all attributes).
    projections => "flag-projections", "BRAIN2_FLAG_PROJECTIONS";
    /// User-scoped in-process cache of node and graph reads, invalidated by the user's writes.
    read_cache => "flag-read-cache", "BRAIN2_FLAG_READ_CACHE";
    /// In-process adjacency lists, invalidated on edge and node changes.
    adjacency_cache => "flag-adjacency-cache", "BRAIN2_FLAG_ADJACENCY_CACHE";
    /// A second cache tier every instance shares (`BRAIN2_CACHE_URL`; without it, off): a write through any instance is read at once through all.
    shared_cache => "flag-shared-cache", "BRAIN2_FLAG_SHARED_CACHE";
    /// gzip/br responses above 1 KB when the client accepts them.
    compression => "flag-compression", "BRAIN2_FLAG_COMPRESSION";
    /// Deletes mark nodes deleted in one write and clean up asynchronously (off: cascade in the request).
    soft_delete => "flag-soft-delete", "BRAIN2_FLAG_SOFT_DELETE";
}

/// The optimized profile's event delivery, chosen by measurement (docs/events.md compares
/// the three): the fastest request path, and no event lost with the process.
pub const OPTIMIZED_EVENT_DELIVERY: EventDelivery = EventDelivery::Outbox;

impl Default for Flags {
    fn default() -> Self {
        Self::OPTIMIZED
    }
}

impl Flags {
    /// A copy with one flag changed; `None` for an unknown name.
    pub fn with(mut self, name: &str, value: bool) -> Option<Self> {
        self.set(name, value).then_some(self)
    }

    /// A copy with another event delivery.
    pub fn with_event_delivery(self, event_delivery: EventDelivery) -> Self {
        Self { event_delivery, ..self }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: FlagSettings,
    }

    fn flags(args: &[&str]) -> Result<Flags, clap::Error> {
        Cli::try_parse_from(std::iter::once("brain2").chain(args.iter().copied())).map(|cli| cli.flags.resolve())
    }

    #[test]
    fn profiles_and_overrides() {
        assert_eq!(flags(&[]).unwrap(), Flags::OPTIMIZED);
        assert_eq!(flags(&["--profile", "baseline"]).unwrap(), Flags::BASELINE);
        let mixed = flags(&["--profile", "baseline", "--flag-batch-writes", "on"]).unwrap();
        assert!(mixed.batch_writes);
        assert!(!mixed.batch_reads);
        let off = flags(&["--flag-compression", "off"]).unwrap();
        assert!(!off.compression && off.read_cache);
    }

    #[test]
    fn event_delivery_follows_the_profile_unless_set() {
        assert_eq!(flags(&["--profile", "baseline"]).unwrap().event_delivery, EventDelivery::Inline);
        assert_eq!(flags(&[]).unwrap().event_delivery, OPTIMIZED_EVENT_DELIVERY);
        for (value, delivery) in [
            ("inline", EventDelivery::Inline),
            ("background", EventDelivery::Background),
            ("outbox", EventDelivery::Outbox),
        ] {
            let set = flags(&["--profile", "baseline", "--event-delivery", value]).unwrap();
            assert_eq!(set, Flags::BASELINE.with_event_delivery(delivery));
            assert_eq!(FlagSettings::from(set).resolve(), set);
            assert_eq!(delivery.as_str(), value);
        }
        assert!(flags(&["--event-delivery", "later"]).is_err());
    }

    #[test]
    fn rejects_unknown_values() {
        assert!(flags(&["--profile", "fast"]).is_err());
        assert!(flags(&["--flag-soft-delete", "maybe"]).is_err());
    }

    #[test]
    fn every_flag_is_listed_settable_and_round_trips_through_settings() {
        let names: Vec<&str> = Flags::OPTIMIZED.entries().into_keys().collect();
        assert_eq!(names.len(), 11);
        for name in names {
            let flipped = Flags::OPTIMIZED.with(name, false).unwrap();
            assert_eq!(flipped.entries().values().filter(|on| !**on).count(), 1, "{name}");
            assert_eq!(FlagSettings::from(flipped).resolve(), flipped, "{name}");
            let long = format!("--flag-{}", name.replace('_', "-"));
            assert_eq!(flags(&[&long, "off"]).unwrap(), flipped, "{long}");
        }
        assert!(Flags::OPTIMIZED.with("nonsense", false).is_none());
    }
}
