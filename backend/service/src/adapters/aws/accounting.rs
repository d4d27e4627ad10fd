//! The SDK interceptor that feeds the per-request cost ledger: one call per operation
//! (retries included in the one call, as the caller sees it) and DynamoDB's consumed capacity.

use aws_sdk_dynamodb::types::ConsumedCapacity;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::Output;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::costs;
use crate::telemetry::metric;

#[derive(Debug, Default, Clone)]
pub struct CostInterceptor;

/// `CapacityUnits` DynamoDB reported in an operation's output: one `ConsumedCapacity`, or
/// one per table for batch and transaction operations. Read from the output the SDK has
/// already deserialized: parsing the response body a second time cost every call as much
/// as a small request's own handling. Other outputs (and errors) report none.
pub fn consumed_capacity(output: &Output) -> f64 {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemOutput, batch_write_item::BatchWriteItemOutput, delete_item::DeleteItemOutput,
        get_item::GetItemOutput, put_item::PutItemOutput, query::QueryOutput, scan::ScanOutput,
        transact_get_items::TransactGetItemsOutput, transact_write_items::TransactWriteItemsOutput,
        update_item::UpdateItemOutput,
    };
    fn units(capacity: &ConsumedCapacity) -> f64 {
        capacity.capacity_units().unwrap_or(0.0)
    }
    macro_rules! single_table {
        ($($output:ty),*) => {$(
            if let Some(output) = output.downcast_ref::<$output>() {
                return output.consumed_capacity().map_or(0.0, units);
            }
        )*};
    }
    macro_rules! per_table {
        ($($output:ty),*) => {$(
            if let Some(output) = output.downcast_ref::<$output>() {
                return output.consumed_capacity().iter().map(units).sum();
            }
        )*};
    }
    single_table!(GetItemOutput, QueryOutput, PutItemOutput, UpdateItemOutput, DeleteItemOutput, ScanOutput);
    per_table!(BatchGetItemOutput, BatchWriteItemOutput, TransactWriteItemsOutput, TransactGetItemsOutput);
    0.0
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
        if is_dynamodb && let Ok(output) = context.output_or_error() {
            let units = consumed_capacity(output);
            metric::dynamodb_capacity(units);
            costs::record_capacity(units);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;

    use super::*;

    fn capacity(units: f64) -> ConsumedCapacity {
        ConsumedCapacity::builder().table_name("t").capacity_units(units).build()
    }

    #[test]
    fn reads_single_and_per_table_capacity_from_typed_outputs() {
        let single = GetItemOutput::builder().consumed_capacity(capacity(1.5)).build();
        assert_eq!(consumed_capacity(&Output::erase(single)), 1.5);
        let listed =
            BatchWriteItemOutput::builder().consumed_capacity(capacity(2.0)).consumed_capacity(capacity(0.5)).build();
        assert_eq!(consumed_capacity(&Output::erase(listed)), 2.5);
        assert_eq!(consumed_capacity(&Output::erase(GetItemOutput::builder().build())), 0.0);
        assert_eq!(consumed_capacity(&Output::erase(PutEventsOutput::builder().build())), 0.0);
    }
}
