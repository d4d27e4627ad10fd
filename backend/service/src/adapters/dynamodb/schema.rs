//! The table schema, read from `schema/table.json`: the one description of keys and indexes
//! that the service and the infrastructure stack share.

use std::sync::LazyLock;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use serde::Deserialize;

use crate::ports::StoreError;

const SCHEMA_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/table.json"));

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    pub partition_key: String,
    pub sort_key: String,
    pub ttl_attribute: String,
    pub indexes: Indexes,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indexes {
    pub keyword: IndexSchema,
    pub deletion_queue: IndexSchema,
    pub user_time: IndexSchema,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexSchema {
    pub name: String,
    pub partition_key: String,
    pub sort_key: String,
    pub projection: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

/// Parsed once; the file is compiled in, so a malformed schema fails the first test that runs.
pub static SCHEMA: LazyLock<TableSchema> =
    LazyLock::new(|| serde_json::from_str(SCHEMA_JSON).expect("schema/table.json is valid"));

impl TableSchema {
    fn all_indexes(&self) -> [&IndexSchema; 3] {
        [&self.indexes.keyword, &self.indexes.deletion_queue, &self.indexes.user_time]
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("invalid table schema: {error}"))
}

fn gsi(index: &IndexSchema) -> Result<GlobalSecondaryIndex, StoreError> {
    let mut projection = Projection::builder().projection_type(ProjectionType::from(index.projection.as_str()));
    for attribute in &index.non_key_attributes {
        projection = projection.non_key_attributes(attribute);
    }
    GlobalSecondaryIndex::builder()
        .index_name(&index.name)
        .key_schema(key(&index.partition_key, KeyType::Hash)?)
        .key_schema(key(&index.sort_key, KeyType::Range)?)
        .projection(projection.build())
        .build()
        .map_err(build_error)
}

/// Creates the table with its indexes, stream and TTL, unless it exists already.
/// Used by local development and tests; in AWS the infrastructure stack creates it.
pub async fn ensure_table(client: &Client, table_name: &str) -> Result<(), StoreError> {
    if client.describe_table().table_name(table_name).send().await.is_ok() {
        return Ok(());
    }
    let schema = &*SCHEMA;
    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(&schema.partition_key, KeyType::Hash)?)
        .key_schema(key(&schema.sort_key, KeyType::Range)?)
        .attribute_definitions(string_attribute(&schema.partition_key)?)
        .attribute_definitions(string_attribute(&schema.sort_key)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build_error)?,
        );
    for index in schema.all_indexes() {
        request = request
            .attribute_definitions(string_attribute(&index.partition_key)?)
            .attribute_definitions(string_attribute(&index.sort_key)?)
            .global_secondary_indexes(gsi(index)?);
    }
    request.send().await.map_err(super::sdk_error)?;
    client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(&schema.ttl_attribute)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(super::sdk_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_the_three_indexes() {
        let schema = &*SCHEMA;
        assert_eq!(schema.indexes.keyword.name, "KeywordIndex");
        assert_eq!(schema.indexes.deletion_queue.name, "DeletionQueue");
        assert_eq!(schema.indexes.user_time.name, "UserTimeIndex");
        assert_eq!(schema.indexes.deletion_queue.projection, "KEYS_ONLY");
        for index in schema.all_indexes() {
            assert!(gsi(index).is_ok(), "{} does not build", index.name);
        }
    }
}
