//! Logging setup: JSON lines in Lambda (CloudWatch Logs Insights parses them), readable text locally.

use tracing_subscriber::EnvFilter;

pub fn running_in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = running_in_lambda() || std::env::var("BRAIN2_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` because tests may install a subscriber more than once per process.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}

/// One CloudWatch Embedded Metric Format record for a finished request: CloudWatch turns
/// the log line into metrics without an API call on the request path.
pub fn emf_request_record(
    route: &str,
    method: &str,
    status: u16,
    latency_ms: f64,
    costs: &crate::costs::CostReport,
) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "Brain2",
                "Dimensions": [["Route", "Method"]],
                "Metrics": [
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "AwsCalls", "Unit": "Count"},
                    {"Name": "ConsumedCapacity", "Unit": "None"},
                    {"Name": "ClientsBuilt", "Unit": "Count"},
                    {"Name": "ServerErrors", "Unit": "Count"}
                ]
            }]
        },
        "Route": route,
        "Method": method,
        "Status": status,
        "Latency": latency_ms,
        "AwsCalls": costs.total_calls(),
        "ConsumedCapacity": costs.capacity_units,
        "ClientsBuilt": costs.clients_built,
        "ServerErrors": u64::from(status >= 500),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_record_names_every_metric_it_carries() {
        let mut costs = crate::costs::CostReport::default();
        costs.calls.insert("DynamoDB.Query".into(), 2);
        let record: serde_json::Value =
            serde_json::from_str(&emf_request_record("/api/v1/graph-data", "GET", 200, 12.5, &costs)).unwrap();
        let declared: Vec<&str> = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &declared {
            assert!(record.get(*name).is_some(), "{name} declared but missing");
        }
        assert_eq!(record["AwsCalls"], 2);
        assert_eq!(record["ServerErrors"], 0);
    }
}
