//! Reading the server's Prometheus text: the AWS calls the whole process made, background
//! work included, except the workers' queue polling (`SQS.ReceiveMessage`): the in-process
//! workers poll every 250 ms whether there is work or not, so those calls measure time,
//! not requests (in AWS, Lambda's event source mapping does the polling).

use std::time::{Duration, Instant};

pub const AWS_CALLS: &str = "brain2_aws_calls_total";
const QUEUE_POLLING: &str = "operation=\"ReceiveMessage\"";

/// The sum of the samples of `name` (every label set but those holding `except`) in a
/// Prometheus text exposition.
pub fn total(exposition: &str, name: &str, except: Option<&str>) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter(|(series, _)| except.is_none_or(|except| !series.contains(except)))
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

/// The process's AWS calls so far, queue polling left out.
pub async fn aws_calls(client: &reqwest::Client, metrics_url: &str) -> anyhow::Result<f64> {
    let exposition = client.get(metrics_url).send().await?.error_for_status()?.text().await?;
    Ok(total(&exposition, AWS_CALLS, Some(QUEUE_POLLING)))
}

/// The process's AWS call count at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallCount {
    pub calls: f64,
    /// Whether background work had died down; if not, its tail counts in what follows.
    pub settled: bool,
}

/// The process's AWS call count once background work has died down: unchanged over
/// `quiet`, or whatever it is after `limit` (then not `settled`).
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
        if now == last || Instant::now() > deadline {
            return Ok(CallCount { calls: now, settled: now == last });
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_label_set_of_one_metric_only() {
        let exposition = "# TYPE brain2_aws_calls_total counter\n\
            brain2_aws_calls_total{service=\"DynamoDB\",operation=\"Query\"} 7\n\
            brain2_aws_calls_total{service=\"EventBridge\",operation=\"PutEvents\"} 3\n\
            brain2_aws_calls_total_other 100\n\
            brain2_http_requests_total{route=\"/x\"} 5\n";
        assert_eq!(total(exposition, AWS_CALLS, None), 10.0);
        assert_eq!(total(exposition, AWS_CALLS, Some("operation=\"PutEvents\"")), 7.0);
        assert_eq!(total(exposition, "brain2_missing", None), 0.0);
    }
}
