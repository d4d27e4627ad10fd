//! The Lambda function's own figures: cold starts of the API binary under the Runtime API
//! emulator, against local emulators of its own, and the size of its deployment zip.

use anyhow::{Context, bail};
use brain2_devstack::{LocalAws, Provisioned};
use serde::Serialize;
use serde_json::Value;

use crate::config::HarnessConfig;
use crate::lambda_emulator::{
    ColdStart, LambdaFunction, MinMedianMax, WarmRun, api_gateway_v2_event, measure_cold_start, measure_warm,
};
use crate::local_stack::LocalStack;
use crate::package::lambda_zip_bytes;

/// What the function's environment holds against local emulators: their endpoints, local
/// credentials, and the service's own settings for `table` (also the bus). The read cache is
/// off so that every invocation reads DynamoDB, as a cold environment would.
pub fn function_environment(
    aws: &LocalAws,
    table: &str,
    provisioned: &Provisioned,
    jwt_secret: &str,
) -> Vec<(String, String)> {
    let settings = [("BRAIN2_JWT_SECRET", jwt_secret), ("BRAIN2_FLAG_READ_CACHE", "off")]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
    aws.service_environment(table, table, provisioned).into_iter().chain(settings).collect()
}

/// The `lambda` section of the report: the release `brain2-lambda` under the Runtime API
/// emulator, reading one note with the read cache off.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaFigures {
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    pub cold_runs: usize,
    /// Exec to the runtime's first `GET /next` (its init work done).
    pub cold_exec_to_first_next_ms: Option<MinMedianMax>,
    /// Exec to the first answered invocation, the SDK clients built.
    pub cold_exec_to_first_response_ms: Option<MinMedianMax>,
    /// One environment, invoked again and again, frozen in between.
    pub warm: Option<WarmRun>,
}

/// Cold starts over `cold_runs` fresh processes, warm invocations of one environment, and
/// sizes, of the `brain2-lambda` built beside the harness, on emulators of its own.
pub async fn measure(config: &HarnessConfig, run_id: &str, jwt_secret: &str) -> anyhow::Result<LambdaFigures> {
    let binary = HarnessConfig::sibling_binary(&config.lambda_bin, "brain2-lambda")?;
    let mut figures = LambdaFigures {
        binary_bytes: std::fs::metadata(&binary)?.len(),
        zip_bytes: lambda_zip_bytes(&binary)?,
        cold_runs: config.cold_runs,
        cold_exec_to_first_next_ms: None,
        cold_exec_to_first_response_ms: None,
        warm: None,
    };
    if config.cold_runs == 0 && config.warm_invocations == 0 {
        return Ok(figures);
    }
    let stack = LocalStack::start(&std::env::current_dir()?).await?;
    let aws = stack.aws();
    let table = format!("lt-lambda-{run_id}");
    let provisioned = aws.provision(&table, &table).await?;
    let environment = function_environment(aws, &table, &provisioned, jwt_secret);
    let token = crate::run::local_token(config, jwt_secret, "lt-lambda")?;
    let headers = [("authorization", format!("Bearer {token}")), ("content-type", "application/json".to_owned())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();

    // The node every invocation reads, created by a function of its own.
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
    let read_note = api_gateway_v2_event("GET", &path, "", &headers, None);

    crate::run::progress(format_args!("lambda: {} cold starts of {}", config.cold_runs, binary.display()));
    let mut cold_starts = Vec::with_capacity(config.cold_runs);
    for _ in 0..config.cold_runs {
        cold_starts.push(measure_cold_start(&binary, &environment, read_note.clone()).await?);
    }
    let of = |figure: fn(&ColdStart) -> f64| MinMedianMax::of(&cold_starts.iter().map(figure).collect::<Vec<_>>());
    figures.cold_exec_to_first_next_ms = of(|cold| cold.exec_to_first_next_ms);
    figures.cold_exec_to_first_response_ms = of(|cold| cold.exec_to_first_response_ms);
    if config.warm_invocations > 0 {
        crate::run::progress(format_args!("lambda: {} warm invocations", config.warm_invocations));
        figures.warm = Some(measure_warm(&binary, &environment, &read_note, config.warm_invocations).await?);
    }
    Ok(figures)
}
