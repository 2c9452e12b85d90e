//! Exchange and queue names, and the topology that connects them, in one place.
//!
//! Both bus implementations build exactly this topology: the embedded bus in memory, the AMQP
//! bus as durable exchanges and queues on RabbitMQ. A role publishes to an exchange (or to a
//! queue through the default exchange, `""`) and consumes from a queue; it never needs to know
//! who else is listening.

/// Requests from the frontier to the crawlers (default exchange, routing key = queue).
pub const CRAWL_REQUESTS: &str = "leakwatch.crawl.requests";
/// Links found by crawlers, back to the frontier.
pub const CRAWL_DISCOVERED: &str = "leakwatch.crawl.discovered";
/// Fetched images, to the matchers.
pub const IMAGES: &str = "leakwatch.images";
/// Image verdicts (hashes), to the indexer.
pub const VERDICTS: &str = "leakwatch.verdicts";

/// Fanout exchange for fetched pages: the indexer and the matcher each get every page.
pub const PAGES_EXCHANGE: &str = "leakwatch.pages";
pub const PAGES_FOR_INDEXER: &str = "leakwatch.pages.indexer";
pub const PAGES_FOR_MATCHER: &str = "leakwatch.pages.matcher";

/// Topic exchange for alerts, routing keys `alert.image`, `alert.scene` and `alert.text`.
pub const ALERTS_EXCHANGE: &str = "alerts";
/// The alert store's own queue on the alerts exchange.
pub const ALERTS_FOR_STORE: &str = "leakwatch.alerts.store";

/// How an exchange routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Fanout,
    Topic,
}

/// A queue bound to an exchange with a routing-key pattern (`#`, `*` as in AMQP topics).
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub queue: &'static str,
    pub pattern: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub name: &'static str,
    pub kind: ExchangeKind,
    pub bindings: &'static [Binding],
}

/// Queues reached through the default exchange by name.
pub const DIRECT_QUEUES: &[&str] = &[CRAWL_REQUESTS, CRAWL_DISCOVERED, IMAGES, VERDICTS];

/// Exchanges and their bindings.
pub const EXCHANGES: &[Exchange] = &[
    Exchange {
        name: PAGES_EXCHANGE,
        kind: ExchangeKind::Fanout,
        bindings: &[
            Binding {
                queue: PAGES_FOR_INDEXER,
                pattern: "",
            },
            Binding {
                queue: PAGES_FOR_MATCHER,
                pattern: "",
            },
        ],
    },
    Exchange {
        name: ALERTS_EXCHANGE,
        kind: ExchangeKind::Topic,
        bindings: &[Binding {
            queue: ALERTS_FOR_STORE,
            pattern: "alert.#",
        }],
    },
];

/// Every queue of the topology.
pub fn all_queues() -> Vec<&'static str> {
    let mut q: Vec<&'static str> = DIRECT_QUEUES.to_vec();
    for e in EXCHANGES {
        q.extend(e.bindings.iter().map(|b| b.queue));
    }
    q
}

/// AMQP topic matching: words split by `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|i| go(rest, &k[i..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((w, rest)) => k.first() == Some(w) && go(rest, &k[1..]),
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("alert.#", "alert.image"));
        assert!(topic_matches("alert.#", "alert"));
        assert!(topic_matches("alert.*", "alert.text"));
        assert!(!topic_matches("alert.*", "alert.text.x"));
        assert!(!topic_matches("alert.image", "alert.text"));
        assert!(topic_matches("#", "anything.at.all"));
    }

    #[test]
    fn queues_are_unique() {
        let mut q = all_queues();
        let n = q.len();
        q.sort();
        q.dedup();
        assert_eq!(q.len(), n);
    }
}
