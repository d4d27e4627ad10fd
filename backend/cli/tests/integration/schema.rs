//! The shared table as the suite finds it, against `schema/table.json`. Where that table is
//! the one the infrastructure stack deployed (`BRAIN2_TEST_TABLE`, the LocalStack path of
//! `make test-containers`), this proves the stack creates the table the code expects.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{KeySchemaElement, KeyType, StreamViewType, TimeToLiveStatus};
use brain2::adapters::dynamodb::schema::SCHEMA;

use crate::support::stack;

fn keys(elements: &[KeySchemaElement]) -> Vec<(String, KeyType)> {
    elements.iter().map(|key| (key.attribute_name().to_owned(), key.key_type().clone())).collect()
}

/// Partition and sort key, projection type and sorted non-key attributes, per index name.
type IndexShape = (Vec<(String, KeyType)>, String, Vec<String>);

#[tokio::test]
async fn the_shared_table_has_the_keys_indexes_stream_and_ttl_of_the_schema() {
    let stack = stack();
    let dynamodb = stack.aws.clients().await.dynamodb;
    let described = dynamodb.describe_table().table_name(&stack.table).send().await.expect("the table exists");
    let table = described.table.expect("a description");

    let expected_keys = vec![(SCHEMA.partition_key.clone(), KeyType::Hash), (SCHEMA.sort_key.clone(), KeyType::Range)];
    assert_eq!(keys(table.key_schema()), expected_keys);

    let indexes = &SCHEMA.indexes;
    let expected: BTreeMap<String, IndexShape> = [&indexes.keyword, &indexes.deletion_queue, &indexes.user_time]
        .into_iter()
        .map(|index| {
            let mut attributes = index.non_key_attributes.clone();
            attributes.sort();
            let keys = vec![(index.partition_key.clone(), KeyType::Hash), (index.sort_key.clone(), KeyType::Range)];
            (index.name.clone(), (keys, index.projection.clone(), attributes))
        })
        .collect();
    let found: BTreeMap<String, IndexShape> = table
        .global_secondary_indexes()
        .iter()
        .map(|index| {
            let projection = index.projection().expect("a projection");
            let mut attributes = projection.non_key_attributes().to_vec();
            attributes.sort();
            let projection_type = projection.projection_type().map(|kind| kind.as_str().to_owned()).unwrap_or_default();
            (index.index_name().unwrap_or_default().to_owned(), (keys(index.key_schema()), projection_type, attributes))
        })
        .collect();
    assert_eq!(found, expected);

    let stream = table.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type(), Some(&StreamViewType::NewAndOldImages));

    let ttl = dynamodb.describe_time_to_live().table_name(&stack.table).send().await.expect("TTL is described");
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(ttl.attribute_name(), Some(SCHEMA.ttl_attribute.as_str()));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}
