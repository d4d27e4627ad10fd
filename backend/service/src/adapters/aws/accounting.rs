//! The SDK interceptor that feeds the per-request cost ledger: one call per operation
//! (retries included in the one call, as the caller sees it) and DynamoDB's consumed capacity.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

use crate::costs;
use crate::telemetry::metric;

#[derive(Debug, Default, Clone)]
pub struct CostInterceptor;

/// `CapacityUnits` of a DynamoDB response body: one `ConsumedCapacity` object, or a list of
/// them (batch and transaction operations, one per table).
pub fn consumed_capacity(body: &[u8]) -> f64 {
    let Ok(json) = serde_json::from_slice::<Value>(body) else { return 0.0 };
    let units = |entry: &Value| entry.get("CapacityUnits").and_then(Value::as_f64).unwrap_or(0.0);
    match json.get("ConsumedCapacity") {
        Some(Value::Array(entries)) => entries.iter().map(units).sum(),
        Some(entry) => units(entry),
        None => 0.0,
    }
}

impl Intercept for CostInterceptor {
    fn name(&self) -> &'static str {
        "Brain2CostInterceptor"
    }

    // Not `read_before_execution`: client-level interceptors run that hook before the
    // operation's configuration (and so its `Metadata`) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            metric::aws_call(metadata.service(), metadata.name());
            costs::record_call(format!("{}.{}", metadata.service(), metadata.name()));
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_dynamodb = cfg.load::<Metadata>().is_some_and(|metadata| metadata.service() == "DynamoDB");
        // By now the orchestrator has read the (non-streaming) body into memory.
        if is_dynamodb && let Some(body) = context.response().body().bytes() {
            let units = consumed_capacity(body);
            metric::dynamodb_capacity(units);
            costs::record_capacity(units);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_and_listed_capacity() {
        assert_eq!(consumed_capacity(br#"{"ConsumedCapacity":{"TableName":"t","CapacityUnits":1.5}}"#), 1.5);
        let listed = br#"{"ConsumedCapacity":[{"CapacityUnits":2.0},{"CapacityUnits":0.5}],"UnprocessedItems":{}}"#;
        assert_eq!(consumed_capacity(listed), 2.5);
        assert_eq!(consumed_capacity(b"{}"), 0.0);
        assert_eq!(consumed_capacity(b"not json"), 0.0);
    }
}
