//! Reads the table's stream the way Lambda's event source mapping does, for the outbox relay
//! of `brain2 serve`: every shard, parents before their children, from the last record
//! delivered. That position is kept in the table, so a restarted process carries on where
//! the last one stopped instead of starting over or skipping what it never delivered.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use chrono::{DateTime, Utc};

use super::changes::{ChangeKind, TableChange};
use super::items::{self, Item};
use super::keys;
use super::schema::SCHEMA;
use super::sdk_error;
use crate::adapters::aws::AwsClients;
use crate::ports::StoreError;

/// Records one GetRecords call returns at most (the API's own limit).
const RECORDS_PER_CALL: i32 = 1_000;
/// How often the list of shards is read again: DynamoDB opens new shards over time.
const SHARD_REFRESH: Duration = Duration::from_secs(10);
const SEQUENCE_NUMBER: &str = "sequenceNumber";

/// Records of one shard, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardBatch {
    pub shard_id: String,
    pub changes: Vec<TableChange>,
}

#[derive(Debug, Default)]
struct Shard {
    parent: Option<String>,
    /// The last record delivered (acknowledged); the next read starts after it.
    delivered: Option<String>,
    /// A record to read again, from itself on (a failed delivery).
    retry_at: Option<String>,
    iterator: Option<String>,
    /// Read to its end: DynamoDB closed it and every record was delivered.
    finished: bool,
}

pub struct TableStream {
    clients: AwsClients,
    table: String,
    stream_arn: String,
    shards: BTreeMap<String, Shard>,
    listed_at: Option<Instant>,
}

/// Stream sequence numbers are decimal strings of varying length.
fn sequence_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn checkpoint_key(shard_id: &str) -> Item {
    items::primary_key(keys::STREAM_CHECKPOINT_PARTITION.to_owned(), keys::stream_checkpoint_sort_key(shard_id))
}

fn is_checkpoint(change: &TableChange) -> bool {
    let image = change.new_image.as_ref().or(change.old_image.as_ref());
    image.and_then(|item| items::string_attribute(item, &SCHEMA.partition_key))
        == Some(keys::STREAM_CHECKPOINT_PARTITION)
}

/// A stream record of the Streams API as the relay reads it.
pub fn table_change(record: Record) -> Option<TableChange> {
    let kind = ChangeKind::parse(record.event_name()?.as_str())?;
    let change = record.dynamodb?;
    let image = |image: Option<HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        image.map(|image| Item::from(serde_dynamo::Item::from(image)))
    };
    let recorded_at = change
        .approximate_creation_date_time
        .and_then(|at| DateTime::<Utc>::from_timestamp_millis(at.to_millis().ok()?))
        .unwrap_or_else(Utc::now);
    Some(TableChange {
        record_id: record.event_id?,
        sequence_number: change.sequence_number?,
        kind,
        recorded_at,
        old_image: image(change.old_image),
        new_image: image(change.new_image),
    })
}

impl TableStream {
    /// The table's current stream, with the positions a previous run left.
    pub async fn open(clients: AwsClients, table: &str) -> Result<Self, StoreError> {
        let description = clients.dynamodb.describe_table().table_name(table).send().await.map_err(sdk_error)?;
        let stream_arn = description
            .table
            .and_then(|table| table.latest_stream_arn)
            .ok_or_else(|| StoreError::Unavailable(format!("table {table} has no stream")))?;
        let mut stream =
            Self { clients, table: table.to_owned(), stream_arn, shards: BTreeMap::new(), listed_at: None };
        stream.load_checkpoints().await?;
        Ok(stream)
    }

    async fn load_checkpoints(&mut self) -> Result<(), StoreError> {
        let partition = AttributeValue::S(keys::STREAM_CHECKPOINT_PARTITION.to_owned());
        let found: Vec<Item> = self
            .clients
            .dynamodb
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_values(":pk", partition)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(sdk_error)?;
        for item in found {
            let shard_id = items::string_attribute(&item, &SCHEMA.sort_key).and_then(|key| key.strip_prefix("SHARD#"));
            if let (Some(shard_id), Some(sequence)) = (shard_id, items::string_attribute(&item, SEQUENCE_NUMBER)) {
                self.shards.entry(shard_id.to_owned()).or_default().delivered = Some(sequence.to_owned());
            }
        }
        Ok(())
    }

    async fn list_shards(&mut self) -> Result<(), StoreError> {
        let mut start: Option<String> = None;
        loop {
            let output = self
                .clients
                .dynamodb_streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            let Some(description) = output.stream_description else { break };
            for shard in description.shards.unwrap_or_default() {
                let Some(shard_id) = shard.shard_id else { continue };
                self.shards.entry(shard_id).or_default().parent = shard.parent_shard_id;
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        self.listed_at = Some(Instant::now());
        Ok(())
    }

    /// A shard is read once its parent (if this run knows it) has been read to its end.
    fn ready(&self, shard: &Shard) -> bool {
        !shard.finished
            && shard.parent.as_ref().and_then(|parent| self.shards.get(parent)).is_none_or(|parent| parent.finished)
    }

    async fn iterator(&self, shard_id: &str, shard: &Shard) -> Result<Option<String>, StoreError> {
        let request =
            self.clients.dynamodb_streams.get_shard_iterator().stream_arn(&self.stream_arn).shard_id(shard_id);
        let request = match (&shard.retry_at, &shard.delivered) {
            (Some(at), _) => request.shard_iterator_type(ShardIteratorType::AtSequenceNumber).sequence_number(at),
            (None, Some(after)) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(after)
            }
            (None, None) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        match request.send().await {
            Ok(output) => Ok(output.shard_iterator),
            // The shard has aged out of the stream (24 hours): nothing of it can be read.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(error) => Err(sdk_error(error)),
        }
    }

    /// The next records of every shard that has some, one GetRecords call per shard.
    /// Empty when the relay has caught up with the stream.
    pub async fn read(&mut self) -> Result<Vec<ShardBatch>, StoreError> {
        if self.listed_at.is_none_or(|at| at.elapsed() >= SHARD_REFRESH) {
            self.list_shards().await?;
        }
        let ready: Vec<String> =
            self.shards.iter().filter(|(_, shard)| self.ready(shard)).map(|(id, _)| id.clone()).collect();
        let mut batches = Vec::new();
        for shard_id in ready {
            let shard = &self.shards[&shard_id];
            let iterator = match &shard.iterator {
                Some(iterator) => Some(iterator.clone()),
                None => self.iterator(&shard_id, shard).await?,
            };
            let Some(iterator) = iterator else {
                self.finish(&shard_id);
                continue;
            };
            let output = match self
                .clients
                .dynamodb_streams
                .get_records()
                .shard_iterator(iterator)
                .limit(RECORDS_PER_CALL)
                .send()
                .await
            {
                Ok(output) => output,
                // Iterators expire after 15 minutes: the next read asks for a new one.
                Err(error) if error.as_service_error().is_some_and(|e| e.is_expired_iterator_exception()) => {
                    self.shards.entry(shard_id).or_default().iterator = None;
                    continue;
                }
                Err(error) => return Err(sdk_error(error)),
            };
            let changes: Vec<TableChange> =
                output.records.unwrap_or_default().into_iter().filter_map(table_change).collect();
            let closed_and_read = output.next_shard_iterator.is_none() && changes.is_empty();
            let shard = self.shards.entry(shard_id.clone()).or_default();
            shard.retry_at = None;
            // Closed, with records still to deliver: the next read starts after them.
            shard.iterator = output.next_shard_iterator;
            if closed_and_read {
                self.finish(&shard_id);
            }
            if !changes.is_empty() {
                batches.push(ShardBatch { shard_id, changes });
            }
        }
        Ok(batches)
    }

    fn finish(&mut self, shard_id: &str) {
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.finished = true;
            shard.iterator = None;
        }
    }

    /// Records up to `sequence_number` (included) are delivered: remembered in the table,
    /// so a restart carries on after them. A batch of nothing but checkpoint changes is
    /// not checkpointed again, so the relay's own writes do not keep it busy.
    pub async fn acknowledge(&mut self, batch: &ShardBatch, sequence_number: &str) -> Result<(), StoreError> {
        let shard = self.shards.entry(batch.shard_id.clone()).or_default();
        if shard.delivered.as_deref().is_some_and(|done| sequence_order(done, sequence_number).is_ge()) {
            return Ok(());
        }
        shard.delivered = Some(sequence_number.to_owned());
        if batch.changes.iter().all(is_checkpoint) {
            return Ok(());
        }
        let mut item = checkpoint_key(&batch.shard_id);
        item.insert(SEQUENCE_NUMBER.to_owned(), AttributeValue::S(sequence_number.to_owned()));
        item.insert("entity".to_owned(), AttributeValue::S("checkpoint".to_owned()));
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// The next read of this shard starts after the last record acknowledged.
    pub fn read_after_delivered(&mut self, shard_id: &str) {
        let shard = self.shards.entry(shard_id.to_owned()).or_default();
        shard.retry_at = None;
        shard.iterator = None;
    }

    /// The next read of this shard starts again at `sequence_number`.
    pub fn retry_from(&mut self, shard_id: &str, sequence_number: &str) {
        let shard = self.shards.entry(shard_id.to_owned()).or_default();
        shard.retry_at = Some(sequence_number.to_owned());
        shard.iterator = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_by_value_not_by_text() {
        assert!(sequence_order("9", "10").is_lt());
        assert!(sequence_order("000100", "000099").is_gt());
        assert!(sequence_order("42", "42").is_eq());
    }

    #[test]
    fn records_of_the_streams_api_become_table_changes() {
        use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, OperationType, StreamRecord};
        let image = HashMap::from([
            ("PK".to_owned(), StreamValue::S("USER#alice".into())),
            ("version".to_owned(), StreamValue::N("3".into())),
            ("keywords".to_owned(), StreamValue::L(vec![StreamValue::S("river".into())])),
        ]);
        let record = Record::builder()
            .event_id("e-1")
            .event_name(OperationType::Modify)
            .dynamodb(
                StreamRecord::builder()
                    .sequence_number("300")
                    .approximate_creation_date_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .set_new_image(Some(image))
                    .build(),
            )
            .build();
        let change = table_change(record).unwrap();
        assert_eq!((change.record_id.as_str(), change.sequence_number.as_str()), ("e-1", "300"));
        assert_eq!(change.kind, ChangeKind::Modify);
        assert_eq!(change.recorded_at.timestamp(), 1_700_000_000);
        let new = change.new_image.unwrap();
        assert_eq!(new["version"], AttributeValue::N("3".into()));
        assert_eq!(new["keywords"], AttributeValue::L(vec![AttributeValue::S("river".into())]));
        assert_eq!(change.old_image, None);
    }
}
