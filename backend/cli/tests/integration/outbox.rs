//! Outbox delivery (`BRAIN2_EVENT_DELIVERY=outbox`): the writes' events come from the
//! table's stream, so they survive the process that made them; the request path makes no
//! PutEvents; a record that can never be an event is set aside and the others delivered.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use brain2::outbox;
use http::Method;
use serde_json::{Value, json};

use crate::serve::{Server, bulk_create_over_tcp, start_server_with};
use crate::support::{
    EmulatorProxy, TestApp, new_queue, on_own_table, record_figures, settings_with, stack, take_distinct_events,
    take_messages, token, unique_user, user_queue,
};

/// Writes over TCP that make one event each: ten notes in bulk, an update, a link and the
/// delete of a note without edges. Returns how many events they stand for.
async fn burst_of_writes(base: &str, user: &str) -> usize {
    let client = reqwest::Client::new();
    let notes: Vec<Value> =
        (0..10).map(|i| json!({"content": format!("Harbour note {i} about cranes and tides")})).collect();
    let created: Value = bulk_create_over_tcp(base, user, notes).await.json().await.unwrap();
    let ids: Vec<String> =
        created["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 10, "{created}");
    let update = json!({"content": "Harbour note rewritten about ships", "version": 1});
    let updated = client.put(format!("{base}/nodes/{}", ids[0])).bearer_auth(token(user)).json(&update);
    assert_eq!(updated.send().await.unwrap().status(), 200);
    let link = json!({"sourceId": ids[1], "targetId": ids[2]});
    let linked = client.post(format!("{base}/edges")).bearer_auth(token(user)).json(&link);
    assert_eq!(linked.send().await.unwrap().status(), 201);
    let deleted = client.delete(format!("{base}/nodes/{}", ids[9])).bearer_auth(token(user));
    assert_eq!(deleted.send().await.unwrap().status(), 204);
    13
}

/// A burst of writes through `brain2 serve` whose bus is unreachable (a proxy that swallows
/// every request), so no event of the burst can leave the process; the process is killed
/// with SIGKILL, then started again with the bus reachable and the workers on. Returns the
/// burst's event count and the distinct events the bus then shows.
async fn writes_then_crash(delivery: &str) -> (usize, Vec<Value>) {
    let settings = on_own_table(settings_with(&[])).await;
    let table = settings.adapters.table.clone();
    let app = TestApp::spawn_with(settings).await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;
    let moto = stack().aws.endpoints().eventbridge.clone().expect("the emulators name EventBridge's endpoint");
    let bus = EmulatorProxy::to(&moto).await;

    let options = ["--table", &table, "--event-delivery", delivery];
    let Server { mut guard, base } =
        start_server_with(&options, &[("AWS_ENDPOINT_URL_EVENTBRIDGE", bus.url.as_str())]).await;
    bus.stall(true);
    let expected = burst_of_writes(&base, &user).await;
    let mut crashed = guard.0.take().unwrap();
    crashed.kill().unwrap(); // SIGKILL: no flush, no shutdown of any kind.
    crashed.wait().unwrap();

    let restarted = start_server_with(&[&options[..], &["--workers"]].concat(), &[]).await;
    let events = take_distinct_events(&app, &queue, expected).await;
    drop(restarted);
    (expected, events)
}

fn distinct_ids(events: &[Value]) -> HashSet<String> {
    events.iter().map(|e| e["detail"]["eventId"].as_str().unwrap().to_owned()).collect()
}

fn kinds(events: &[Value]) -> BTreeMap<String, usize> {
    let mut seen = HashSet::new();
    let mut kinds = BTreeMap::new();
    for event in events {
        if seen.insert(event["detail"]["eventId"].as_str().unwrap().to_owned()) {
            *kinds.entry(event["detail-type"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_before_any_flush_loses_no_event_in_outbox_mode() {
    let (expected, events) = writes_then_crash("outbox").await;
    let ids = distinct_ids(&events);
    assert_eq!(ids.len(), expected, "every write's event arrives after the restart: {events:#?}");
    let expected_kinds =
        BTreeMap::from([("edge.created", 1), ("node.created", 10), ("node.deleted", 1), ("node.updated", 1)]);
    let expected_kinds: BTreeMap<String, usize> = expected_kinds.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(kinds(&events), expected_kinds);
    // A repeat carries the id of the event it repeats: one id per (node, kind, version).
    let facts: HashSet<(String, String, u64)> = events
        .iter()
        .map(|e| {
            let detail = &e["detail"];
            let aggregate = detail["aggregateId"].as_str().unwrap().to_owned();
            (aggregate, e["detail-type"].as_str().unwrap().to_owned(), detail["version"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(facts.len(), ids.len(), "two ids for one fact");
    record_figures(
        "outbox-crash",
        &format!(
            "outbox: {expected} events written, {} delivered after SIGKILL ({} messages)",
            ids.len(),
            events.len()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_before_its_flush_loses_the_events_it_held_in_background_mode() {
    let (expected, events) = writes_then_crash("background").await;
    assert!(events.is_empty(), "the background publisher's queue died with its process: {events:#?}");
    record_figures(
        "background-crash",
        &format!("background: {expected} events written, {} delivered after SIGKILL", distinct_ids(&events).len()),
    );
}

/// The writes of an outbox-mode app make no EventBridge call of their own, where an inline
/// one makes one per event (which shows the cost header would show such a call).
#[tokio::test]
async fn the_request_path_makes_no_put_events_in_outbox_mode() {
    for (delivery, publishes) in [("outbox", false), ("inline", true)] {
        let options = [&format!("--event-delivery={delivery}")[..], "--expose-costs=on"];
        let app = TestApp::spawn_with(on_own_table(settings_with(&options)).await).await;
        let user = unique_user();
        let node = app.create_node(&user, "Rivers carve valleys").await;
        let other = app.create_node(&user, "Glaciers carve fjords").await;
        let (a, b) = (node["id"].as_str().unwrap(), other["id"].as_str().unwrap());
        let responses = [
            app.put(&user, &format!("/api/v1/nodes/{a}"), json!({"content": "Rivers cut canyons", "version": 1})).await,
            app.post(&user, "/api/v1/edges", json!({"sourceId": a, "targetId": b})).await,
            app.delete(&user, &format!("/api/v1/edges/{a}/{b}")).await,
            app.post(&user, "/api/v1/nodes/bulk", json!({"nodes": [{"content": "Tides follow the moon"}]})).await,
            app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(json!({"nodeIds": [b]}))).await,
            app.delete(&user, &format!("/api/v1/nodes/{a}")).await,
        ];
        for response in responses {
            assert!(response.status.is_success(), "{delivery}: {} {}", response.status, response.body);
            let ops = response.header("x-brain2-aws-ops").unwrap_or_default();
            assert_eq!(ops.contains("PutEvents"), publishes, "{delivery}: {ops}");
        }
    }
}

/// A record that looks like a note but cannot be read as one is sent to the stream failures
/// queue with its images; the records around it are delivered. A relay started again on the
/// table carries on after what was delivered: nothing twice.
#[tokio::test]
async fn an_undecodable_record_goes_to_the_failures_queue_and_the_rest_of_its_batch_is_delivered() {
    let clients = stack().aws.factory().build().await;
    let mut settings = on_own_table(settings_with(&["--event-delivery=outbox"])).await;
    let failures = new_queue(&clients).await;
    settings.adapters.stream_failures_queue_url = Some(failures.clone());
    let app = TestApp::spawn_with(settings).await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;

    let before = app.create_node(&user, "Harbour cranes lift containers").await;
    let broken = uuid::Uuid::now_v7().to_string();
    let item = [
        ("PK", AttributeValue::S(format!("USER#{user}"))),
        ("SK", AttributeValue::S(format!("NODE#{broken}"))),
        ("entity", AttributeValue::S("node".into())),
        ("nodeId", AttributeValue::S(broken.clone())),
        ("keywords", AttributeValue::N("7".into())),
    ];
    let put = clients.dynamodb.put_item().table_name(&app.settings.adapters.table);
    put.set_item(Some(item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())).send().await.unwrap();
    let after = app.create_node(&user, "Container ships cross oceans").await;

    let mut stream = app.adapters.table_stream().await.unwrap();
    let delivered = outbox::drain(&mut stream, &app.adapters.relay).await.unwrap();
    let outcome = (delivered.events, delivered.failed_records, delivered.retry_from.clone());
    assert_eq!(outcome, (2, 1, None), "{delivered:?}");
    let events = take_distinct_events(&app, &queue, 2).await;
    let announced: HashSet<&str> = events.iter().map(|e| e["detail"]["aggregateId"].as_str().unwrap()).collect();
    assert_eq!(announced, HashSet::from([before["id"].as_str().unwrap(), after["id"].as_str().unwrap()]));
    let set_aside = take_messages(&app, &failures, 1).await;
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    assert_eq!(set_aside[0]["newImage"]["nodeId"], broken.as_str());
    assert!(set_aside[0]["reason"].as_str().unwrap().contains("malformed"), "{}", set_aside[0]);

    let mut restarted = app.adapters.table_stream().await.unwrap();
    let again = outbox::drain(&mut restarted, &app.adapters.relay).await.unwrap();
    assert_eq!((again.events, again.failed_records), (0, 0), "delivered twice: {again:?}");
}
