//! Faults: one scripted workload (creates, updates, links, bulk create, bulk delete,
//! deletes) run twice on the emulators, once as it is and once with DynamoDB throttling
//! calls, withholding batch items and EventBridge failing entries at high rates (seeded).
//! The client does what a client should: it retries what was reported as not done. The
//! table must end up the same (ids and times aside), nothing reported done may be missing,
//! nothing reported failed may have happened, and every event must be delivered or
//! dead-lettered.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use brain2::adapters::dynamodb::schema::SCHEMA;
use brain2::bootstrap::Settings;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    TestApp, TestResponse, on_own_table, own_queue, record_figures, take_distinct_events_besides, take_messages,
    unique_user, user_queue,
};

/// Rates high enough that the store's own retries cannot hide every fault: seven batch
/// calls in ten return about half their items unprocessed, three DynamoDB calls in ten are
/// throttled, and three event entries in five fail at first.
const FAULTS: &str = "throttle=0.3,unprocessed=0.7,putevents_fail=0.6,seed=20261124";
/// Times the client sends again what was not done before it gives up (and the test fails).
const CLIENT_ATTEMPTS: usize = 40;

/// What the client saw: each node's label by id, and the events it should cause.
#[derive(Default)]
struct Run {
    labels: HashMap<String, String>,
    /// Events by detail type, one per operation reported done.
    events: BTreeMap<&'static str, usize>,
    /// Requests or items reported as not done, then sent again.
    resent: usize,
}

impl Run {
    fn done(&mut self, detail_type: &'static str, count: usize) {
        *self.events.entry(detail_type).or_default() += count;
    }
}

/// Sends until the answer is not "try again later" (503 or 429), as a client would.
async fn send(
    app: &TestApp,
    run: &mut Run,
    method: Method,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> TestResponse {
    for _ in 0..CLIENT_ATTEMPTS {
        let response = app.call(method.clone(), path, Some(user), body.clone()).await;
        if !matches!(response.status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) {
            return response;
        }
        run.resent += 1;
    }
    panic!("{method} {path} never got through");
}

fn note(label: &str) -> String {
    format!("Note {label} about lighthouses, tides and harbour charts")
}

async fn create(app: &TestApp, run: &mut Run, user: &str, label: &str) -> (String, u64) {
    let response = send(app, run, Method::POST, "/api/v1/nodes", user, Some(json!({"content": note(label)}))).await;
    // A create that was reported as failed and sent again must not have happened the first time:
    // the contents are unique, and the final comparison counts each once.
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let id = response.body["id"].as_str().unwrap().to_owned();
    run.labels.insert(id.clone(), label.to_owned());
    run.done("node.created", 1);
    (id, response.body["version"].as_u64().unwrap())
}

/// Creates `labels` in bulk, sending the items reported as failed again until all are
/// done; returns their ids in the order of `labels`.
async fn bulk_create(app: &TestApp, run: &mut Run, user: &str, labels: &[String]) -> Vec<String> {
    let mut pending: Vec<String> = labels.to_vec();
    let mut ids: HashMap<String, String> = HashMap::new();
    for _ in 0..CLIENT_ATTEMPTS {
        if pending.is_empty() {
            return labels.iter().map(|label| ids[label].clone()).collect();
        }
        let nodes: Vec<Value> = pending.iter().map(|label| json!({"content": note(label)})).collect();
        let response = send(app, run, Method::POST, "/api/v1/nodes/bulk", user, Some(json!({"nodes": nodes}))).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        let created = response.body["created"].as_array().unwrap();
        let failed = response.body["failed"].as_array().unwrap();
        assert_eq!(created.len() + failed.len(), pending.len(), "every item accounted for: {}", response.body);
        for node in created {
            let id = node["id"].as_str().unwrap().to_owned();
            let label = pending.iter().find(|label| node["content"] == note(label)).unwrap().clone();
            run.labels.insert(id.clone(), label.clone());
            ids.insert(label, id);
        }
        run.done("node.created", created.len());
        run.resent += failed.len();
        pending = failed.iter().map(|f| pending[f["index"].as_u64().unwrap() as usize].clone()).collect();
    }
    panic!("{} items of a bulk create never got through", pending.len());
}

/// Deletes `ids` in bulk, sending the ids reported as failed again until all are done.
async fn bulk_delete(app: &TestApp, run: &mut Run, user: &str, ids: &[String]) {
    let mut pending: Vec<String> = ids.to_vec();
    for _ in 0..CLIENT_ATTEMPTS {
        if pending.is_empty() {
            return;
        }
        let body = json!({"nodeIds": pending});
        let response = send(app, run, Method::DELETE, "/api/v1/nodes/bulk", user, Some(body)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        let deleted = response.body["deleted"].as_array().unwrap();
        let failed = response.body["failed"].as_array().unwrap();
        assert_eq!(deleted.len() + failed.len(), pending.len(), "every id accounted for: {}", response.body);
        // An id reported failed and sent again is still there: never `not-found` the second time.
        assert!(failed.iter().all(|f| f["code"] != "not-found"), "{}", response.body);
        run.done("node.deleted", deleted.len());
        run.resent += failed.len();
        pending = failed.iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect();
    }
    panic!("{} ids of a bulk delete never got through", pending.len());
}

/// The workload: the same requests, in the same order, whatever happens underneath.
async fn workload(app: &TestApp, user: &str) -> Run {
    let mut run = Run::default();
    let mut singles = Vec::new();
    for i in 0..6 {
        singles.push(create(app, &mut run, user, &format!("single-{i}")).await);
    }
    for (id, version) in &singles[..3] {
        let revised = format!("revised-{}", run.labels[id]);
        let body = json!({"content": note(&revised), "tags": ["revised"], "version": version});
        let response = send(app, &mut run, Method::PUT, &format!("/api/v1/nodes/{id}"), user, Some(body)).await;
        // A 409 here would mean an update reported as not done had happened after all.
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        run.done("node.updated", 1);
        run.labels.insert(id.clone(), revised);
    }
    let bulk_labels: Vec<String> = (0..60).map(|i| format!("bulk-{i}")).collect();
    let bulk = bulk_create(app, &mut run, user, &bulk_labels).await;
    let mut links = vec![(0, 1), (1, 2), (2, 3), (3, 4), (5, 0)]
        .into_iter()
        .map(|(a, b)| (singles[a].0.clone(), singles[b].0.clone()))
        .collect::<Vec<_>>();
    links.extend((0..5).map(|i| (bulk[i].clone(), singles[i].0.clone())));
    links.push((bulk[40].clone(), bulk[41].clone()));
    for (source, target) in &links {
        let body = json!({"sourceId": source, "targetId": target});
        let response = send(app, &mut run, Method::POST, "/api/v1/edges", user, Some(body)).await;
        // A 409 here would mean a link reported as not done had happened after all.
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        run.done("edge.created", 1);
    }
    // Half the bulk notes, two of them linked, and one linked single note, in bulk.
    let mut doomed: Vec<String> = bulk[..30].to_vec();
    doomed.push(singles[4].0.clone());
    bulk_delete(app, &mut run, user, &doomed).await;
    for (id, _) in [&singles[1], &singles[5]] {
        let response = send(app, &mut run, Method::DELETE, &format!("/api/v1/nodes/{id}"), user, None).await;
        // A 404 here would mean a delete reported as not done had happened after all.
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);
        run.done("node.deleted", 1);
    }
    run
}

/// Attributes that differ between two runs of one workload: times, and keys derived from them.
fn varying(name: &str) -> bool {
    let index_keys = [&SCHEMA.indexes.user_time, &SCHEMA.indexes.deletion_queue];
    matches!(name, "createdAt" | "updatedAt" | "deletedAt" | "userId")
        || name == SCHEMA.ttl_attribute
        || index_keys.iter().any(|index| name == index.sort_key || name == index.partition_key)
}

fn text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        AttributeValue::L(list) => format!("[{}]", list.iter().map(text).collect::<Vec<_>>().join(",")),
        AttributeValue::Ss(set) => {
            let mut set = set.clone();
            set.sort();
            format!("{{{}}}", set.join(","))
        }
        other => format!("{other:?}"),
    }
}

/// Every item of the user as text, ids replaced by the labels the run gave them and the
/// user by `USER`: comparable across runs. An id the run never saw stays as it is.
async fn table_state(app: &TestApp, user: &str, run: &Run) -> Vec<String> {
    let mut state: Vec<String> = app
        .raw_items_of(user)
        .await
        .into_iter()
        .map(|item| {
            let fields: BTreeMap<String, String> = item
                .iter()
                .filter(|(name, _)| !varying(name))
                .map(|(name, value)| (name.clone(), text(value)))
                .collect();
            let mut line = format!("{fields:?}").replace(user, "USER");
            for (id, label) in &run.labels {
                line = line.replace(id, label);
            }
            line
        })
        .collect();
    state.sort();
    state
}

/// Events of the run, by detail type: those on the bus and those in the dead-letter queue,
/// each event id once.
async fn events_of(
    app: &TestApp,
    bus_queue: &str,
    dead_letters: &str,
    expected: usize,
) -> (BTreeMap<String, usize>, usize) {
    // Once flushed, every event has been sent or dead-lettered: the dead-letter queue holds
    // all it will, and the rest is on its way to the bus queue.
    app.adapters.events.flush().await;
    let attributes = app
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(dead_letters)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let dead_count: usize = attributes
        .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    let dead = take_messages(app, dead_letters, dead_count).await;
    // Delivery is at least once: a call retried after a lost answer repeats an event under
    // its own id, which consumers apply once; so each event id is counted once.
    let mut type_of: HashMap<String, String> = dead
        .iter()
        .map(|m| (m["detail"]["eventId"].as_str().unwrap().to_owned(), m["detailType"].as_str().unwrap().to_owned()))
        .collect();
    let dead_ids = type_of.keys().cloned().collect();
    for message in take_distinct_events_besides(app, bus_queue, &dead_ids, expected).await {
        let id = message["detail"]["eventId"].as_str().unwrap().to_owned();
        type_of.entry(id).or_insert_with(|| message["detail-type"].as_str().unwrap().to_owned());
    }
    let mut by_type = BTreeMap::new();
    for detail_type in type_of.into_values() {
        *by_type.entry(detail_type).or_default() += 1;
    }
    (by_type, dead_ids.len())
}

struct Outcome {
    state: Vec<String>,
    events: BTreeMap<String, usize>,
    dead_lettered: usize,
    resent: usize,
}

/// Runs the workload as a new user on an app with `settings`, then cleans up (fault-free,
/// through `inspector`) and reads what is left.
async fn run_on(settings: Settings, inspector: &TestApp) -> Outcome {
    let user = unique_user();
    let app = TestApp::spawn_with(settings).await;
    let bus_queue = user_queue(&app, &user, &[]).await;
    let dead_letters = app.settings.adapters.events_dlq_url.clone().unwrap();
    let run = workload(&app, &user).await;
    let expected: usize = run.events.values().sum();
    let (events, dead_lettered) = events_of(&app, &bus_queue, &dead_letters, expected).await;
    let reported: BTreeMap<String, usize> =
        run.events.iter().map(|(kind, count)| ((*kind).to_owned(), *count)).collect();
    assert_eq!(events, reported, "one event per operation reported done, delivered or dead-lettered");
    inspector.run_cleanup().await;
    let state = table_state(inspector, &user, &run).await;
    Outcome { state, events, dead_lettered, resent: run.resent }
}

#[tokio::test]
async fn a_workload_under_high_fault_rates_ends_as_it_does_without_faults() {
    let base = on_own_table(crate::support::test_settings()).await;
    let inspector = TestApp::spawn_with(base.clone()).await;
    let with_queue = |mut settings: Settings, queue: String| {
        settings.adapters.events_dlq_url = Some(queue);
        settings
    };

    let calm = run_on(with_queue(base.clone(), own_queue(&inspector).await), &inspector).await;
    assert_eq!(calm.resent, 0, "nothing needs sending again without faults");
    assert_eq!(calm.dead_lettered, 0);

    let mut stormy_settings = with_queue(base.clone(), own_queue(&inspector).await);
    stormy_settings.adapters.network.faults = Some(brain2::adapters::aws::network::FaultPlan::parse(FAULTS).unwrap());
    let injected = stormy_settings.adapters.network.injected.clone();
    let stormy = run_on(stormy_settings, &inspector).await;

    assert!(injected.throttled() > 0 && injected.withheld_items() > 0 && injected.failed_entries() > 0);
    assert!(stormy.resent > 0, "the faults made some requests or items fail, and they were reported");
    assert_eq!(stormy.events, calm.events);
    let items_checked = calm.state.len();
    assert!(items_checked > 100, "{items_checked} items");
    let only_stormy: Vec<&String> = stormy.state.iter().filter(|item| !calm.state.contains(item)).collect();
    let only_calm: Vec<&String> = calm.state.iter().filter(|item| !stormy.state.contains(item)).collect();
    assert!(
        only_stormy.is_empty() && only_calm.is_empty(),
        "left behind by the faulty run: {only_stormy:#?}\nmissing after it: {only_calm:#?}"
    );
    assert_eq!(stormy.state, calm.state, "the same items, as many times each");
    record_figures(
        "faults",
        &format!(
            "faults injected: {} ({} throttled calls, {} withheld batch items, {} failed event entries); \
             items checked: {items_checked}; events checked: {} ({} dead-lettered); reported and sent again: {}; \
             lost: 0",
            injected.total(),
            injected.throttled(),
            injected.withheld_items(),
            injected.failed_entries(),
            stormy.events.values().sum::<usize>(),
            stormy.dead_lettered,
            stormy.resent,
        ),
    );
}
