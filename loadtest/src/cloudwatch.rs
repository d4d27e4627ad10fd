//! The server side of a deployed run, from CloudWatch (`CLOUDWATCH=1`): what the API
//! function, the table and the REST API saw during each profile's run window, read with
//! one `GetMetricData` call per window.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};
use serde::Serialize;

/// CloudWatch's standard resolution: a period is a multiple of a minute.
const MINUTE: u64 = 60;
/// The service's own metrics (EMF), as the Lambda functions publish them.
const SERVICE_NAMESPACE: &str = "Brain2";
const INIT_DURATION_METRIC: &str = "brain2_lambda_init_duration_seconds";

/// The deployed resources whose metrics are read.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// The API Lambda function's name.
    pub function: String,
    pub table: String,
    /// The REST API's name and stage (API Gateway's metric dimensions).
    pub api: String,
    pub stage: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// What the servers saw in one window; `None` where CloudWatch had no data point.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerSide {
    pub window_start: String,
    pub window_end: String,
    pub lambda_invocations: Option<f64>,
    pub lambda_duration_ms: Percentiles,
    /// The process's start to its first invocation, from the service's own metric.
    pub lambda_init_duration_ms: Percentiles,
    pub dynamodb_read_capacity_units: Option<f64>,
    pub dynamodb_write_capacity_units: Option<f64>,
    pub api_latency_ms: Percentiles,
    pub api_integration_latency_ms: Percentiles,
    pub api_cache_hits: Option<f64>,
    pub api_cache_misses: Option<f64>,
}

/// How the data points of a query combine when the window spans more than one period.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Combine {
    Sum,
    /// Percentiles of separate periods cannot be merged; the worst one is reported.
    Worst,
}

/// One figure: a metric, its statistic, and how to scale it to the report's unit.
struct Query {
    id: &'static str,
    namespace: &'static str,
    metric: &'static str,
    dimensions: Vec<(&'static str, String)>,
    statistic: &'static str,
    scale: f64,
    combine: Combine,
}

fn queries(resources: &Resources) -> Vec<Query> {
    let function = || vec![("FunctionName", resources.function.clone())];
    let service = || vec![("Function", resources.function.clone())];
    let table = || vec![("TableName", resources.table.clone())];
    let api = || vec![("ApiName", resources.api.clone()), ("Stage", resources.stage.clone())];
    let query = |id, namespace, metric, dimensions, statistic, scale, combine| Query {
        id,
        namespace,
        metric,
        dimensions,
        statistic,
        scale,
        combine,
    };
    use Combine::{Sum, Worst};
    vec![
        query("lambda_invocations", "AWS/Lambda", "Invocations", function(), "Sum", 1.0, Sum),
        query("lambda_duration_p50", "AWS/Lambda", "Duration", function(), "p50", 1.0, Worst),
        query("lambda_duration_p99", "AWS/Lambda", "Duration", function(), "p99", 1.0, Worst),
        query("lambda_init_p50", SERVICE_NAMESPACE, INIT_DURATION_METRIC, service(), "p50", 1000.0, Worst),
        query("lambda_init_p99", SERVICE_NAMESPACE, INIT_DURATION_METRIC, service(), "p99", 1000.0, Worst),
        query("dynamodb_read", "AWS/DynamoDB", "ConsumedReadCapacityUnits", table(), "Sum", 1.0, Sum),
        query("dynamodb_write", "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table(), "Sum", 1.0, Sum),
        query("api_latency_p50", "AWS/ApiGateway", "Latency", api(), "p50", 1.0, Worst),
        query("api_latency_p99", "AWS/ApiGateway", "Latency", api(), "p99", 1.0, Worst),
        query("api_integration_p50", "AWS/ApiGateway", "IntegrationLatency", api(), "p50", 1.0, Worst),
        query("api_integration_p99", "AWS/ApiGateway", "IntegrationLatency", api(), "p99", 1.0, Worst),
        query("api_cache_hits", "AWS/ApiGateway", "CacheHitCount", api(), "Sum", 1.0, Sum),
        query("api_cache_misses", "AWS/ApiGateway", "CacheMissCount", api(), "Sum", 1.0, Sum),
    ]
}

/// The window widened to whole minutes, and one period that covers all of it, so each
/// query answers with a single data point.
fn aligned_window(start: SystemTime, end: SystemTime) -> (u64, u64, u64) {
    let seconds = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let start = seconds(start) / MINUTE * MINUTE;
    let end = seconds(end).max(start + 1).div_ceil(MINUTE) * MINUTE;
    (start, end, end - start)
}

fn metric_query(query: &Query, period: u64) -> anyhow::Result<MetricDataQuery> {
    let dimensions = query
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect::<Vec<_>>();
    let metric =
        Metric::builder().namespace(query.namespace).metric_name(query.metric).set_dimensions(Some(dimensions)).build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(i32::try_from(period).context("a window of more than 68 years")?)
        .stat(query.statistic)
        .build();
    Ok(MetricDataQuery::builder().id(query.id).metric_stat(stat).return_data(true).build())
}

/// Reads the window `[start, end]`. Metrics reach CloudWatch a minute or two after the
/// fact: call this once they have (the harness waits `CLOUDWATCH_DELAY` after the run).
pub async fn read(
    client: &Client,
    resources: &Resources,
    start: SystemTime,
    end: SystemTime,
) -> anyhow::Result<ServerSide> {
    let (start, end, period) = aligned_window(start, end);
    let queries = queries(resources);
    let requests = queries.iter().map(|query| metric_query(query, period)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut values: HashMap<String, Vec<f64>> = HashMap::new();
    let mut next_token = None;
    loop {
        let output = client
            .get_metric_data()
            .set_metric_data_queries(Some(requests.clone()))
            .start_time(DateTime::from_secs(start as i64))
            .end_time(DateTime::from_secs(end as i64))
            .set_next_token(next_token)
            .send()
            .await
            .context("CloudWatch GetMetricData")?;
        for result in output.metric_data_results.unwrap_or_default() {
            if let Some(StatusCode::Forbidden | StatusCode::InternalError) = result.status_code {
                anyhow::bail!("CloudWatch could not read {:?}: {:?}", result.id, result.messages);
            }
            let id = result.id.unwrap_or_default();
            values.entry(id).or_default().extend(result.values.unwrap_or_default());
        }
        next_token = output.next_token;
        if next_token.is_none() {
            break;
        }
    }
    let figure = |id: &str| -> Option<f64> {
        let query = queries.iter().find(|query| query.id == id)?;
        let points = values.get(id).filter(|points| !points.is_empty())?;
        let combined = match query.combine {
            Combine::Sum => points.iter().sum(),
            Combine::Worst => points.iter().copied().fold(f64::MIN, f64::max),
        };
        Some(combined * query.scale)
    };
    let percentiles =
        |prefix: &str| Percentiles { p50: figure(&format!("{prefix}_p50")), p99: figure(&format!("{prefix}_p99")) };
    let rfc3339 = |seconds: u64| {
        chrono::DateTime::from_timestamp(seconds as i64, 0)
            .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    Ok(ServerSide {
        window_start: rfc3339(start),
        window_end: rfc3339(end),
        lambda_invocations: figure("lambda_invocations"),
        lambda_duration_ms: percentiles("lambda_duration"),
        lambda_init_duration_ms: percentiles("lambda_init"),
        dynamodb_read_capacity_units: figure("dynamodb_read"),
        dynamodb_write_capacity_units: figure("dynamodb_write"),
        api_latency_ms: percentiles("api_latency"),
        api_integration_latency_ms: percentiles("api_integration"),
        api_cache_hits: figure("api_cache_hits"),
        api_cache_misses: figure("api_cache_misses"),
    })
}

/// A CloudWatch client from the SDK's default chain (credentials, region, endpoint).
pub async fn client() -> Client {
    let http = brain2::adapters::aws::https_client(brain2::adapters::aws::TrustRoots::System);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await;
    Client::new(&config)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataInput, GetMetricDataOutput};
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    /// A metric as CloudWatch keys it: namespace, name, dimensions (sorted), statistic.
    type Key = (String, String, BTreeMap<String, String>, String);

    fn key(namespace: &str, metric: &str, dimensions: &[(&str, &str)], statistic: &str) -> Key {
        let dimensions = dimensions.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        (namespace.into(), metric.into(), dimensions, statistic.into())
    }

    fn key_of(query: &MetricDataQuery) -> Key {
        let stat = query.metric_stat().expect("a metric query");
        let metric = stat.metric().expect("a metric");
        let dimensions =
            metric.dimensions().iter().map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned())).collect();
        let (namespace, name) = (metric.namespace().unwrap().to_owned(), metric.metric_name().unwrap().to_owned());
        (namespace, name, dimensions, stat.stat().unwrap().to_owned())
    }

    fn resources() -> Resources {
        Resources {
            function: "brain2-api".into(),
            table: "brain2-table".into(),
            api: "brain2".into(),
            stage: "prod".into(),
        }
    }

    /// Answers every query from `data` by its metric, as CloudWatch would: no entry, no points.
    fn answer(data: &HashMap<Key, Vec<f64>>, input: &GetMetricDataInput) -> GetMetricDataOutput {
        let results = input
            .metric_data_queries()
            .iter()
            .map(|query| {
                let values = data.get(&key_of(query)).cloned().unwrap_or_default();
                MetricDataResult::builder()
                    .id(query.id().unwrap())
                    .set_values(Some(values))
                    .status_code(StatusCode::Complete)
                    .build()
            })
            .collect();
        GetMetricDataOutput::builder().set_metric_data_results(Some(results)).build()
    }

    fn window() -> (SystemTime, SystemTime) {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_030);
        (start, start + Duration::from_secs(95))
    }

    #[tokio::test]
    async fn every_figure_comes_from_its_own_metric_dimensions_and_statistic() {
        let lambda = [("FunctionName", "brain2-api")];
        let api = [("ApiName", "brain2"), ("Stage", "prod")];
        let table = [("TableName", "brain2-table")];
        let data: HashMap<Key, Vec<f64>> = HashMap::from([
            (key("AWS/Lambda", "Invocations", &lambda, "Sum"), vec![1200.0]),
            (key("AWS/Lambda", "Duration", &lambda, "p50"), vec![3.5]),
            (key("AWS/Lambda", "Duration", &lambda, "p99"), vec![41.0]),
            (key("Brain2", INIT_DURATION_METRIC, &[("Function", "brain2-api")], "p50"), vec![0.012]),
            (key("Brain2", INIT_DURATION_METRIC, &[("Function", "brain2-api")], "p99"), vec![0.020]),
            (key("AWS/DynamoDB", "ConsumedReadCapacityUnits", &table, "Sum"), vec![300.5]),
            (key("AWS/DynamoDB", "ConsumedWriteCapacityUnits", &table, "Sum"), vec![77.0]),
            (key("AWS/ApiGateway", "Latency", &api, "p50"), vec![12.0]),
            (key("AWS/ApiGateway", "Latency", &api, "p99"), vec![95.0]),
            (key("AWS/ApiGateway", "IntegrationLatency", &api, "p50"), vec![8.0]),
            (key("AWS/ApiGateway", "IntegrationLatency", &api, "p99"), vec![80.0]),
            (key("AWS/ApiGateway", "CacheHitCount", &api, "Sum"), vec![900.0]),
            (key("AWS/ApiGateway", "CacheMissCount", &api, "Sum"), vec![100.0]),
        ]);
        let data = Arc::new(data);
        let rule = mock!(Client::get_metric_data).then_compute_output(move |input| answer(&data, input));
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let (start, end) = window();

        let figures = read(&client, &resources(), start, end).await.unwrap();

        assert_eq!(rule.num_calls(), 1);
        assert_eq!(figures.lambda_invocations, Some(1200.0));
        assert_eq!(figures.lambda_duration_ms, Percentiles { p50: Some(3.5), p99: Some(41.0) });
        assert_eq!(figures.lambda_init_duration_ms, Percentiles { p50: Some(12.0), p99: Some(20.0) });
        assert_eq!(figures.dynamodb_read_capacity_units, Some(300.5));
        assert_eq!(figures.dynamodb_write_capacity_units, Some(77.0));
        assert_eq!(figures.api_latency_ms, Percentiles { p50: Some(12.0), p99: Some(95.0) });
        assert_eq!(figures.api_integration_latency_ms, Percentiles { p50: Some(8.0), p99: Some(80.0) });
        assert_eq!((figures.api_cache_hits, figures.api_cache_misses), (Some(900.0), Some(100.0)));
        assert_eq!(
            (figures.window_start.as_str(), figures.window_end.as_str()),
            ("2027-01-15T08:00:00Z", "2027-01-15T08:03:00Z")
        );
    }

    #[tokio::test]
    async fn one_period_spans_the_whole_window_in_whole_minutes() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|input| {
                let (start, end) = (input.start_time().unwrap().secs(), input.end_time().unwrap().secs());
                let periods: Vec<i32> =
                    input.metric_data_queries().iter().filter_map(|q| q.metric_stat()?.period()).collect();
                start % 60 == 0
                    && end % 60 == 0
                    && start <= 1_800_000_030
                    && end >= 1_800_000_125
                    && periods.iter().all(|period| i64::from(*period) == end - start)
                    && periods.len() == queries(&resources()).len()
            })
            .then_output(|| GetMetricDataOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let (start, end) = window();

        read(&client, &resources(), start, end).await.unwrap();

        assert_eq!(rule.num_calls(), 1, "the request did not cover the window with one period");
    }

    #[tokio::test]
    async fn pages_are_gathered_counts_add_up_and_the_worst_percentile_is_kept() {
        let page = |token: Option<&str>, invocations: f64, p99: f64| {
            let results = vec![
                MetricDataResult::builder().id("lambda_invocations").values(invocations).build(),
                MetricDataResult::builder().id("lambda_duration_p99").values(p99).build(),
            ];
            GetMetricDataOutput::builder()
                .set_metric_data_results(Some(results))
                .set_next_token(token.map(str::to_owned))
                .build()
        };
        let first = mock!(Client::get_metric_data)
            .match_requests(|input| input.next_token().is_none())
            .then_output(move || page(Some("page-2"), 10.0, 40.0));
        let second = mock!(Client::get_metric_data)
            .match_requests(|input| input.next_token() == Some("page-2"))
            .then_output(move || page(None, 5.0, 90.0));
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
        let (start, end) = window();

        let figures = read(&client, &resources(), start, end).await.unwrap();

        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        assert_eq!(figures.lambda_invocations, Some(15.0));
        assert_eq!(figures.lambda_duration_ms.p99, Some(90.0));
    }

    #[tokio::test]
    async fn a_metric_without_data_points_is_absent_not_zero() {
        let rule = mock!(Client::get_metric_data).then_compute_output(|input| answer(&HashMap::new(), input));
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let (start, end) = window();

        let figures = read(&client, &resources(), start, end).await.unwrap();

        assert_eq!(figures.lambda_invocations, None);
        assert_eq!(figures.api_cache_hits, None);
        assert_eq!(figures.lambda_duration_ms, Percentiles::default());
    }

    #[tokio::test]
    async fn a_query_cloudwatch_refuses_fails_the_read() {
        let rule = mock!(Client::get_metric_data).then_output(|| {
            let refused = MetricDataResult::builder().id("dynamodb_read").status_code(StatusCode::Forbidden).build();
            GetMetricDataOutput::builder().metric_data_results(refused).build()
        });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let (start, end) = window();

        let error = read(&client, &resources(), start, end).await.unwrap_err();

        assert!(error.to_string().contains("dynamodb_read"), "{error}");
    }
}
