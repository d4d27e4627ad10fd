//! BatchWriteItem and BatchGetItem with the limits DynamoDB enforces (25 writes, 100 keys),
//! bounded concurrency, and retries of unprocessed items with jittered exponential backoff
//! ([`STORE_RETRY`]). Nothing is attempted, and no retry started, once the request's
//! deadline ([`crate::deadline`]) has passed: what is left is reported as failed.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity, WriteRequest};
use futures::stream::{self, StreamExt};

use super::items::{Item, primary_key_of};
use super::sdk_error;
use crate::adapters::aws::retry::STORE_RETRY;
use crate::deadline;
use crate::ports::{StoreError, WriteFailure};

/// Every call asks for its consumed capacity: the per-request cost accounting sums it.
const TOTAL: ReturnConsumedCapacity = ReturnConsumedCapacity::Total;

pub const MAX_BATCH_WRITE: usize = 25;
pub const MAX_BATCH_GET: usize = 100;
/// Chunks in flight at once when `parallel_chunks` is on; enough to hide round trips
/// without bursting one partition.
pub const CHUNK_CONCURRENCY: usize = 4;

/// How batches are sent; each switch is a runtime flag (see `crate::flags`).
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// BatchWriteItem of 25 (off: one PutItem/DeleteItem per item).
    pub batch_writes: bool,
    /// BatchGetItem of 100 (off: one GetItem per key).
    pub batch_reads: bool,
    /// Chunks in flight at once.
    pub concurrency: usize,
}

/// Runs a single call again while DynamoDB sheds load (see [`STORE_RETRY`]).
pub async fn retry_transient<T, E, R, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>>,
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    STORE_RETRY
        .run(
            || {
                let attempt = call();
                async move { attempt.await.map_err(sdk_error) }
            },
            is_throttled,
        )
        .await
}

/// Throttling and transient faults get better with time; anything else (a malformed
/// request, a failed condition) will not.
pub fn is_throttled(error: &StoreError) -> bool {
    matches!(error, StoreError::Throttled(_))
}

/// A write request with the caller's tag, so failures can be reported per owner.
pub struct TaggedWrite<T> {
    pub tag: T,
    pub request: WriteRequest,
}

type KeyOf = (String, String);

fn key_of_request(request: &WriteRequest) -> Option<KeyOf> {
    if let Some(put) = request.put_request() {
        primary_key_of(put.item())
    } else {
        request.delete_request().and_then(|delete| primary_key_of(delete.key()))
    }
}

/// Writes every request; returns the tags of those that still failed after all retries,
/// each with why.
/// Requests with the same primary key are written once (DynamoDB rejects a batch that
/// names one key twice).
pub async fn write_all<T: Clone + Send + Sync>(
    client: &Client,
    table: &str,
    writes: Vec<TaggedWrite<T>>,
    policy: BatchPolicy,
) -> Result<Vec<(T, WriteFailure)>, StoreError> {
    let mut seen = HashMap::new();
    let mut unique = Vec::with_capacity(writes.len());
    for write in writes {
        let key = key_of_request(&write.request)
            .ok_or_else(|| StoreError::Unavailable("write request without a primary key".into()))?;
        if seen.insert(key, ()).is_none() {
            unique.push(write);
        }
    }
    if !policy.batch_writes {
        return write_one_by_one(client, table, unique, policy.concurrency).await;
    }
    let chunks: Vec<Vec<TaggedWrite<T>>> = chunked(unique, MAX_BATCH_WRITE);
    let results: Vec<Result<Vec<(T, WriteFailure)>, StoreError>> = stream::iter(chunks)
        .map(|chunk| write_chunk(client, table, chunk))
        .buffer_unordered(policy.concurrency)
        .collect()
        .await;
    let mut failed = Vec::new();
    for result in results {
        failed.extend(result?);
    }
    Ok(failed)
}

/// The old way: one PutItem or DeleteItem per item (the SDK still retries each call).
async fn write_one_by_one<T: Clone + Send + Sync>(
    client: &Client,
    table: &str,
    writes: Vec<TaggedWrite<T>>,
    concurrency: usize,
) -> Result<Vec<(T, WriteFailure)>, StoreError> {
    let outcomes: Vec<Option<(T, WriteFailure)>> = stream::iter(writes)
        .map(|write| async move {
            let result = if deadline::expired() {
                Err(StoreError::DeadlineExceeded)
            } else if let Some(put) = write.request.put_request {
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(put.item))
                    .return_consumed_capacity(TOTAL)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(sdk_error)
            } else if let Some(delete) = write.request.delete_request {
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(delete.key))
                    .return_consumed_capacity(TOTAL)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(sdk_error)
            } else {
                Ok(())
            };
            match result {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(%error, "single-item write failed");
                    Some((write.tag, error.into()))
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Ok(outcomes.into_iter().flatten().collect())
}

pub fn chunked<V>(values: Vec<V>, size: usize) -> Vec<Vec<V>> {
    let mut chunks = Vec::with_capacity(values.len().div_ceil(size));
    let mut iter = values.into_iter().peekable();
    while iter.peek().is_some() {
        chunks.push(iter.by_ref().take(size).collect());
    }
    chunks
}

async fn write_chunk<T: Clone>(
    client: &Client,
    table: &str,
    chunk: Vec<TaggedWrite<T>>,
) -> Result<Vec<(T, WriteFailure)>, StoreError> {
    let mut tags: HashMap<KeyOf, T> = HashMap::with_capacity(chunk.len());
    let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
    for write in chunk {
        if let Some(key) = key_of_request(&write.request) {
            tags.insert(key, write.tag);
            pending.push(write.request);
        }
    }
    let mut delays = STORE_RETRY.delays();
    // Set when the store failed otherwise than by shedding load.
    let mut failure = None;
    while !deadline::expired() {
        let response = client
            .batch_write_item()
            .request_items(table, pending.clone())
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match response {
            Ok(output) => {
                pending = output.unprocessed_items.and_then(|mut map| map.remove(table)).unwrap_or_default();
                if pending.is_empty() {
                    return Ok(Vec::new());
                }
            }
            Err(error) => {
                let error = sdk_error(error);
                if !is_throttled(&error) {
                    tracing::warn!(%error, items = pending.len(), "batch write failed");
                    failure = Some(error.into());
                    break;
                }
            }
        }
        let Some(delay) = delays.next() else { break };
        tokio::time::sleep(delay).await;
    }
    let failure = failure.unwrap_or_else(busy_after_retries);
    tracing::warn!(items = pending.len(), "batch write items left unprocessed after retries");
    Ok(pending
        .iter()
        .filter_map(key_of_request)
        .filter_map(|key| tags.get(&key).cloned())
        .map(|tag| (tag, failure.clone()))
        .collect())
}

/// Why items are left when the store kept shedding load (throttling, unprocessed items)
/// until the retries ran out: the request's deadline, when that is what ended them.
pub(super) fn busy_after_retries() -> WriteFailure {
    if deadline::expired() { WriteFailure::DeadlineExceeded } else { WriteFailure::Throttled }
}

/// Reads items by primary key; missing items are simply absent from the result.
pub async fn get_all(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    policy: BatchPolicy,
) -> Result<Vec<Item>, StoreError> {
    get_all_with(client, table, keys, policy, None).await
}

/// [`get_all`], reading only the attributes of `projection` (plain names, no reserved words).
pub async fn get_all_projected(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    policy: BatchPolicy,
    projection: &str,
) -> Result<Vec<Item>, StoreError> {
    get_all_with(client, table, keys, policy, Some(projection)).await
}

async fn get_all_with(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    policy: BatchPolicy,
    projection: Option<&str>,
) -> Result<Vec<Item>, StoreError> {
    let results: Vec<Result<Vec<Item>, StoreError>> = if policy.batch_reads {
        stream::iter(chunked(keys, MAX_BATCH_GET))
            .map(|chunk| get_chunk(client, table, chunk, projection))
            .buffer_unordered(policy.concurrency)
            .collect()
            .await
    } else {
        // The old way: one GetItem per key.
        stream::iter(keys)
            .map(|key| async move {
                let output = retry_transient(|| {
                    client
                        .get_item()
                        .table_name(table)
                        .set_key(Some(key.clone()))
                        .set_projection_expression(projection.map(str::to_owned))
                        .consistent_read(true)
                        .return_consumed_capacity(TOTAL)
                        .send()
                })
                .await?;
                Ok(output.item.into_iter().collect())
            })
            .buffer_unordered(policy.concurrency)
            .collect()
            .await
    };
    let mut items = Vec::new();
    for result in results {
        items.extend(result?);
    }
    Ok(items)
}

async fn get_chunk(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::with_capacity(keys.len());
    let mut pending = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .set_projection_expression(projection.map(str::to_owned))
        .consistent_read(true)
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut delays = STORE_RETRY.delays();
    let mut retries = 0;
    loop {
        if deadline::expired() {
            return Err(StoreError::DeadlineExceeded);
        }
        let response = client
            .batch_get_item()
            .request_items(table, pending.clone())
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(sdk_error);
        match response {
            Ok(output) => {
                if let Some(mut responses) = output.responses {
                    items.extend(responses.remove(table).unwrap_or_default());
                }
                match output.unprocessed_keys.and_then(|mut map| map.remove(table)) {
                    Some(remaining) if !remaining.keys().is_empty() => pending = remaining,
                    _ => return Ok(items),
                }
            }
            Err(error) if is_throttled(&error) => {}
            Err(other) => return Err(other),
        }
        let Some(delay) = delays.next() else {
            // Retries end early only when the deadline leaves no time for another.
            return Err(if retries + 1 < STORE_RETRY.attempts {
                StoreError::DeadlineExceeded
            } else {
                StoreError::Throttled("batch get keys left unprocessed after retries".into())
            });
        };
        retries += 1;
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit() {
        let chunks = chunked((0..60).collect(), MAX_BATCH_WRITE);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![25, 25, 10]);
        assert!(chunked(Vec::<u8>::new(), 25).is_empty());
    }
}
