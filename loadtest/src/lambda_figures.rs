//! The Lambda function's own figures: cold starts of the API binary under the Runtime API
//! emulator, against local emulators of its own, and the size of its deployment zip.

use anyhow::{Context, bail};
use brain2_devstack::LocalAws;
use serde_json::Value;

use crate::config::HarnessConfig;
use crate::lambda_emulator::{LambdaFunction, MinMedianMax, api_gateway_v2_event, measure_cold_start};
use crate::local_stack::LocalStack;
use crate::package::lambda_zip_bytes;

/// What the function's environment holds against local emulators: their endpoints, local
/// credentials, and the service's own settings. The read cache is off so that every
/// invocation reads DynamoDB, as a cold environment would.
pub fn function_environment(
    aws: &LocalAws,
    table: &str,
    dead_letter_queue: &str,
    jwt_secret: &str,
) -> Vec<(String, String)> {
    let settings = [
        ("BRAIN2_TABLE", table),
        ("BRAIN2_EVENT_BUS", table),
        ("BRAIN2_JWT_SECRET", jwt_secret),
        ("BRAIN2_EVENTS_DLQ_URL", dead_letter_queue),
        ("BRAIN2_FLAG_READ_CACHE", "off"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    aws.environment().into_iter().chain(settings).collect()
}

/// Cold start (exec to first answered invocation, over `cold_runs` fresh processes) and
/// zip size of the `brain2-lambda` built beside the harness, on the run's emulators (or
/// emulators of its own when the run targets a deployment).
pub async fn measure(
    config: &HarnessConfig,
    local: Option<&LocalStack>,
    run_id: &str,
    jwt_secret: &str,
) -> anyhow::Result<(Option<MinMedianMax>, Option<u64>)> {
    let binary = HarnessConfig::sibling_binary(&config.lambda_bin, "brain2-lambda")?;
    let zip_bytes = lambda_zip_bytes(&binary)?;
    if config.cold_runs == 0 {
        return Ok((None, Some(zip_bytes)));
    }
    crate::run::progress(format_args!("lambda: {} cold starts of {}", config.cold_runs, binary.display()));
    let own_stack = match local {
        Some(_) => None,
        None => Some(LocalStack::start(&std::env::current_dir()?).await?),
    };
    let aws = local.or(own_stack.as_ref()).map(LocalStack::aws).context("a local stack")?;
    let table = format!("lt-lambda-{run_id}");
    let provisioned = aws.provision(&table, &table).await?;
    let environment = function_environment(aws, &table, &provisioned.publish_dlq_url, jwt_secret);
    let token = crate::run::local_token(config, jwt_secret, "lt-lambda")?;
    let headers = [("authorization", format!("Bearer {token}")), ("content-type", "application/json".to_owned())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();

    // The node every cold start reads, created by a function of its own.
    let mut creator = LambdaFunction::start(&binary, &environment).await?;
    let body = Some(serde_json::json!({ "content": "Cold starts read this note" }).to_string());
    let created = creator.invoke(api_gateway_v2_event("POST", "/api/v1/nodes", "", &headers, body)).await;
    creator.stop().await?;
    let created = created?.http_response()?;
    if created.status != 201 {
        bail!("creating the note cold starts read answered {}", created.status);
    }
    let node: Value = created.json()?;
    let path = format!("/api/v1/nodes/{}", node["id"].as_str().context("the created note has no id")?);
    let mut samples = Vec::with_capacity(config.cold_runs);
    for _ in 0..config.cold_runs {
        let cold =
            measure_cold_start(&binary, &environment, api_gateway_v2_event("GET", &path, "", &headers, None)).await?;
        samples.push(cold.exec_to_first_response_ms);
    }
    Ok((MinMedianMax::of(&samples), Some(zip_bytes)))
}
