//! Reading the server's Prometheus text: the AWS calls the whole process made, background
//! work included, per service and operation as the SDK names them.
//!
//! Two kinds of call measure time rather than requests: the workers' queue polling
//! (`SQS.ReceiveMessage`: the in-process workers poll every 250 ms whether there is work or
//! not) and the outbox relay's reading of the table's stream (`GetRecords`, every 250 ms
//! when it has caught up, with `GetShardIterator` and `DescribeStream` around it). In AWS,
//! Lambda's event source mappings do both. Queue polling is left out of the total per
//! request; neither counts when the harness waits for background work to stand still.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

pub const AWS_CALLS: &str = "brain2_aws_calls_total";
/// The workers' polling of their queues.
const QUEUE_POLLING: &str = "ReceiveMessage";
/// The operations a reader of a DynamoDB stream polls with (the Streams API's own names).
const STREAM_READING: [&str; 3] = ["GetRecords", "GetShardIterator", "DescribeStream"];
pub const PUT_EVENTS: &str = "PutEvents";

/// One series of the AWS call counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    /// The SDK's name of the service (`DynamoDB`, `EventBridge`, `DynamoDB Streams`, ...).
    pub service: String,
    pub operation: String,
}

impl Operation {
    fn is_queue_polling(&self) -> bool {
        self.operation == QUEUE_POLLING
    }

    fn is_stream_reading(&self) -> bool {
        STREAM_READING.contains(&self.operation.as_str())
    }
}

/// The process's AWS calls, per service and operation: a count so far, or the difference
/// of two counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsCalls(pub BTreeMap<Operation, f64>);

impl AwsCalls {
    /// The calls of `brain2_aws_calls_total` in a Prometheus text exposition.
    pub fn parse(exposition: &str) -> Self {
        let mut calls = BTreeMap::new();
        for (labels, value) in samples(exposition, AWS_CALLS) {
            let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
            let operation = Operation { service: label("service"), operation: label("operation") };
            *calls.entry(operation).or_insert(0.0) += value;
        }
        Self(calls)
    }

    fn sum(&self, keep: impl Fn(&Operation) -> bool) -> f64 {
        // Folded from +0.0: an empty float sum is -0.0.
        self.0.iter().filter(|(operation, _)| keep(operation)).fold(0.0, |sum, (_, calls)| sum + calls)
    }

    /// Every call, polling included.
    pub fn all(&self) -> f64 {
        self.sum(|_| true)
    }

    /// Every call but the workers' queue polling: the total per request of the report.
    pub fn without_queue_polling(&self) -> f64 {
        self.sum(|operation| !operation.is_queue_polling())
    }

    /// The calls that only background work or requests make: no polling of queues or of
    /// the table's stream. The harness waits for this count to stand still.
    pub fn work(&self) -> f64 {
        self.sum(|operation| !operation.is_queue_polling() && !operation.is_stream_reading())
    }

    /// Calls of one operation, whatever the service.
    pub fn operation(&self, name: &str) -> f64 {
        self.sum(|operation| operation.operation == name)
    }

    /// Calls reading the table's stream (the outbox relay of `brain2 serve --workers`).
    pub fn stream_reading(&self) -> f64 {
        self.sum(Operation::is_stream_reading)
    }

    /// What was called between `earlier` and this count.
    pub fn since(&self, earlier: &Self) -> Self {
        let calls = self
            .0
            .iter()
            .map(|(operation, calls)| {
                let before = earlier.0.get(operation).copied().unwrap_or(0.0);
                (operation.clone(), calls - before)
            })
            .filter(|(_, calls)| *calls != 0.0)
            .collect();
        Self(calls)
    }

    /// The sum of two differences (consecutive scenarios).
    pub fn plus(&self, other: &Self) -> Self {
        let mut calls = self.0.clone();
        for (operation, count) in &other.0 {
            *calls.entry(operation.clone()).or_insert(0.0) += count;
        }
        Self(calls)
    }

    /// `Service.Operation` to calls, for the report.
    pub fn by_operation(&self) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .map(|(operation, calls)| (format!("{}.{}", operation.service, operation.operation), *calls))
            .collect()
    }
}

/// The server-side AWS calls of a stretch of the run (a scenario with the background work
/// that followed it, or a whole profile), from the server's own counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerCalls {
    /// Every call of the process, queue polling and stream reading included.
    pub all: f64,
    /// `all` per request of the scenario (or of the profile).
    pub all_per_request: Option<f64>,
    /// EventBridge `PutEvents` calls: inline, by the background publisher or by the relay.
    pub put_events: f64,
    pub put_events_per_request: Option<f64>,
    /// Calls reading the table's stream (`GetRecords`, `GetShardIterator`,
    /// `DescribeStream`): the outbox relay's, idle polling included.
    pub stream_reading: f64,
    /// The workers' `ReceiveMessage` calls (left out of `total_aws_calls_per_request`).
    pub queue_polling: f64,
    /// `Service.Operation` (the SDK's names) to calls.
    pub by_operation: BTreeMap<String, f64>,
}

impl ServerCalls {
    pub fn new(calls: &AwsCalls, requests: usize) -> Self {
        let per_request = |count: f64| (requests > 0).then(|| count / requests as f64);
        let all = calls.all();
        let put_events = calls.operation(PUT_EVENTS);
        Self {
            all,
            all_per_request: per_request(all),
            put_events,
            put_events_per_request: per_request(put_events),
            stream_reading: calls.stream_reading(),
            queue_polling: calls.operation(QUEUE_POLLING),
            by_operation: calls.by_operation(),
        }
    }
}

/// The samples of `name` in a Prometheus text exposition, with their labels.
pub fn samples(exposition: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(series, value)| {
            let (metric, labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, labels(rest.strip_suffix('}')?)?),
                None => (series, BTreeMap::new()),
            };
            (metric.trim() == name).then_some(())?;
            Some((labels, value.parse::<f64>().ok()?))
        })
        .collect()
}

/// `a="x",b="y \"quoted\""` as a map; `None` if it does not read as labels.
fn labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let mut chars = after.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (index, '"') => break index,
                (_, other) => value.push(other),
            }
        };
        labels.insert(name.trim().to_owned(), value);
        rest = after[1 + end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(labels)
}

/// The process's AWS calls so far.
pub async fn aws_calls(client: &reqwest::Client, metrics_url: &str) -> anyhow::Result<AwsCalls> {
    Ok(AwsCalls::parse(&exposition(client, metrics_url).await?))
}

/// The server's Prometheus text exposition now.
pub async fn exposition(client: &reqwest::Client, metrics_url: &str) -> anyhow::Result<String> {
    Ok(client.get(metrics_url).send().await?.error_for_status()?.text().await?)
}

/// The process's AWS call count at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallCount {
    pub calls: AwsCalls,
    /// Whether background work had died down; if not, its tail counts in what follows.
    pub settled: bool,
}

/// The process's AWS call count once background work has died down: its [`AwsCalls::work`]
/// unchanged over `quiet`, or whatever it is after `limit` (then not `settled`).
pub async fn settled_aws_calls(
    client: &reqwest::Client,
    metrics_url: &str,
    quiet: Duration,
    limit: Duration,
) -> anyhow::Result<CallCount> {
    let deadline = Instant::now() + limit;
    let mut last = aws_calls(client, metrics_url).await?;
    loop {
        tokio::time::sleep(quiet).await;
        let now = aws_calls(client, metrics_url).await?;
        let settled = now.work() == last.work();
        if settled || Instant::now() > deadline {
            return Ok(CallCount { calls: now, settled });
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# TYPE brain2_aws_calls_total counter\n\
        brain2_aws_calls_total{service=\"DynamoDB\",operation=\"Query\"} 7\n\
        brain2_aws_calls_total{service=\"EventBridge\",operation=\"PutEvents\"} 3\n\
        brain2_aws_calls_total{service=\"DynamoDB Streams\",operation=\"GetRecords\"} 40\n\
        brain2_aws_calls_total{service=\"DynamoDB Streams\",operation=\"DescribeStream\"} 2\n\
        brain2_aws_calls_total{service=\"SQS\",operation=\"ReceiveMessage\"} 100\n\
        brain2_aws_calls_total_other 100\n\
        brain2_http_requests_total{route=\"/x\"} 5\n";

    #[test]
    fn labels_read_with_spaces_commas_and_escapes() {
        let read = labels(r#"service="DynamoDB Streams", operation="a,b \"c\"",x="""#).unwrap();
        assert_eq!(read["service"], "DynamoDB Streams");
        assert_eq!(read["operation"], "a,b \"c\"");
        assert_eq!(read["x"], "");
        assert_eq!(labels(""), Some(BTreeMap::new()));
        assert_eq!(labels("service=DynamoDB"), None);
        let found = samples(EXPOSITION, "brain2_http_requests_total");
        assert_eq!(found, vec![(BTreeMap::from([("route".to_owned(), "/x".to_owned())]), 5.0)]);
    }

    #[test]
    fn calls_per_operation_of_one_metric_with_polling_apart() {
        let calls = AwsCalls::parse(EXPOSITION);
        assert_eq!(calls.all(), 152.0);
        assert_eq!(calls.without_queue_polling(), 52.0);
        assert_eq!(calls.work(), 10.0);
        assert_eq!(calls.stream_reading(), 42.0);
        assert_eq!(calls.operation(PUT_EVENTS), 3.0);
        let streams = Operation { service: "DynamoDB Streams".into(), operation: "GetRecords".into() };
        assert_eq!(calls.0[&streams], 40.0);
    }

    #[test]
    fn differences_keep_what_changed_and_add_up() {
        let before = AwsCalls::parse(EXPOSITION);
        let after = AwsCalls::parse(
            "brain2_aws_calls_total{service=\"DynamoDB\",operation=\"Query\"} 7\n\
            brain2_aws_calls_total{service=\"DynamoDB\",operation=\"PutItem\"} 4\n\
            brain2_aws_calls_total{service=\"EventBridge\",operation=\"PutEvents\"} 8\n\
            brain2_aws_calls_total{service=\"DynamoDB Streams\",operation=\"GetRecords\"} 52\n\
            brain2_aws_calls_total{service=\"DynamoDB Streams\",operation=\"DescribeStream\"} 2\n\
            brain2_aws_calls_total{service=\"SQS\",operation=\"ReceiveMessage\"} 100\n",
        );
        let during = after.since(&before);
        assert_eq!(
            during.by_operation(),
            BTreeMap::from([
                ("DynamoDB Streams.GetRecords".to_owned(), 12.0),
                ("DynamoDB.PutItem".to_owned(), 4.0),
                ("EventBridge.PutEvents".to_owned(), 5.0),
            ])
        );
        assert_eq!(during.plus(&during).operation(PUT_EVENTS), 10.0);
        let report = ServerCalls::new(&during, 5);
        assert_eq!((report.all, report.all_per_request), (21.0, Some(4.2)));
        assert_eq!((report.put_events, report.put_events_per_request), (5.0, Some(1.0)));
        assert_eq!((report.stream_reading, report.queue_polling), (12.0, 0.0));
        assert_eq!(ServerCalls::new(&during, 0).all_per_request, None);
    }
}
