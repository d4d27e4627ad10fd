//! Concurrent writes on one user's data: whatever interleaving DynamoDB picks, once the
//! dust settles (and cleanup ran) the table holds exactly what the surviving nodes need,
//! and the bus carried exactly one `node.deleted` per deleted node.
//!
//! Each race runs for many rounds with several races per round, so that the windows
//! between a read and the write that depends on it are hit, with `soft_delete` on (the
//! cleanup sweep purges) and off (the delete purges in the request; a purge that other
//! writers kept busy past the store's retries is finished by the sweep).

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use brain2::worker::Worker;
use futures::future::join_all;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    TestApp, new_queue, on_own_table, optimized, record_figures, settings_with, stack, take_messages,
    take_waiting_messages, unique_user, user_queue,
};

/// Rounds of each race: `BRAIN2_TEST_RACE_ROUNDS`, or 20. The container runs of the suite
/// (`make test-containers`) race fewer rounds: what they check is the emulators, and the
/// race logic has had its full rounds in `make test`.
fn rounds() -> usize {
    std::env::var("BRAIN2_TEST_RACE_ROUNDS").ok().and_then(|raw| raw.parse().ok()).filter(|&n| n > 0).unwrap_or(20)
}
const RACES_PER_ROUND: usize = 3;

/// The race apps' request deadline: two minutes, not the 20 s default. Twenty writers on one
/// user's items retry through conflicts, and on a loaded two-core machine a hard delete (which
/// purges in the request) ran past 20 s and answered 503 `deadline-exceeded`: what is checked
/// here is the state races leave, not how fast a slow machine settles them.
const RACE_DEADLINE: &str = "--request-deadline-ms=120000";

/// An app on a table of its own (the sweep purges every tombstone of its table), with
/// `soft_delete` as given and every other optimisation on. It calls again what the service
/// sheds for load (many writers on one user's items conflict, and a slow machine runs out
/// of retries sooner), and has a dead-letter queue of its own for the events EventBridge
/// would not take in time.
async fn app(soft_delete: bool) -> TestApp {
    let mut settings = settings_with(&[RACE_DEADLINE]);
    settings.flags = optimized().with("soft_delete", soft_delete).unwrap().into();
    let mut settings = on_own_table(settings).await;
    settings.adapters.events_dlq_url = Some(new_queue(&stack().aws.factory().build().await).await);
    TestApp::spawn_with(settings).await.retrying_when_busy()
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn strings(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// What the table holds for one user, checked against itself; `live` is node id to its
/// (stemmed) keywords as stored.
struct Inspection {
    live: HashMap<String, Vec<String>>,
    items_checked: usize,
}

/// Reads every item under the user's keys (the user's partition, every postings partition,
/// the counters), the postings partition of every node the test created (a Query each),
/// and every KeywordIndex partition of the keywords involved, and asserts:
/// no tombstone is left, every edge joins two live nodes and has its reverse copy, every
/// posting belongs to a live node that has that keyword, every keyword of a live node has
/// its posting, and the index lists exactly the live nodes with the keyword. The API's
/// graph shows the same nodes and edges.
async fn inspect(app: &TestApp, user: &str, created: &HashSet<String>) -> Inspection {
    let items = app.raw_items_of(user).await;
    let user_partition = format!("USER#{user}");
    let postings_prefix = format!("USER#{user}#NODE#");
    let mut live = HashMap::new();
    let mut edges = HashSet::new();
    let mut postings = HashSet::new();
    for item in &items {
        let (pk, sk) = (string(item, "PK"), string(item, "SK"));
        if pk == user_partition {
            match string(item, "entity").as_str() {
                "node" => {
                    assert!(!item.contains_key("deletedAt"), "a tombstone survived cleanup: {sk}");
                    live.insert(string(item, "nodeId"), strings(item, "keywords"));
                }
                "edge" => {
                    let (owner, other) = sk.strip_prefix("NODE#").unwrap().split_once("#EDGE#").unwrap();
                    edges.insert((owner.to_owned(), other.to_owned()));
                }
                other => panic!("unexpected {other} item in the user's partition: {sk}"),
            }
        } else if let Some(node) = pk.strip_prefix(&postings_prefix) {
            postings.insert((node.to_owned(), sk.strip_prefix("KW#").unwrap().to_owned()));
        }
    }
    for (owner, other) in &edges {
        assert!(live.contains_key(owner) && live.contains_key(other), "edge to a missing node: {owner} -> {other}");
        assert!(edges.contains(&(other.clone(), owner.clone())), "edge without its reverse copy: {owner} -> {other}");
    }
    for (node, keyword) in &postings {
        let keywords = live.get(node).unwrap_or_else(|| panic!("posting {keyword} of a missing node {node}"));
        assert!(keywords.contains(keyword), "posting {keyword} that node {node} no longer has");
    }
    let mut vocabulary = BTreeSet::new();
    for (node, keywords) in &live {
        for keyword in keywords {
            assert!(postings.contains(&(node.clone(), keyword.clone())), "node {node} lacks its {keyword} posting");
            vocabulary.insert(keyword.clone());
        }
    }
    vocabulary.extend(postings.iter().map(|(_, keyword)| keyword.clone()));
    for node in created {
        let queried: HashSet<(String, String)> = app
            .clients
            .dynamodb
            .query()
            .table_name(&app.settings.adapters.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("{postings_prefix}{node}")))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|item| (node.clone(), string(&item.unwrap(), "SK").strip_prefix("KW#").unwrap().to_owned()))
            .collect();
        let expected: HashSet<(String, String)> =
            live.get(node).into_iter().flatten().map(|keyword| (node.clone(), keyword.clone())).collect();
        assert_eq!(queried, expected, "postings partition of {node}");
    }
    let mut index_entries = 0;
    for keyword in &vocabulary {
        let indexed: HashSet<String> = app
            .clients
            .dynamodb
            .query()
            .table_name(&app.settings.adapters.table)
            .index_name("KeywordIndex")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}#KW#{keyword}")))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|item| string(&item.unwrap(), "nodeId"))
            .collect();
        let expected: HashSet<String> =
            live.iter().filter(|(_, keywords)| keywords.contains(keyword)).map(|(id, _)| id.clone()).collect();
        assert_eq!(indexed, expected, "KeywordIndex for {keyword}");
        index_entries += indexed.len();
    }
    let graph = app.get(user, "/api/v1/graph-data").await.body;
    let shown: HashSet<String> =
        graph["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(shown, live.keys().cloned().collect::<HashSet<_>>(), "the graph shows exactly the live nodes");
    assert_eq!(graph["edges"].as_array().unwrap().len() * 2, edges.len(), "the graph shows every edge once");
    // Items read, index entries read, and postings partitions queried.
    Inspection { live, items_checked: items.len() + index_entries + created.len() }
}

/// Takes the user's `node.*` events off the bus, and those the publisher dead-lettered
/// (published all the same, as far as the writes are concerned): exactly `expected`
/// distinct events must be found. Delivery is at least once (a publish retried after a lost
/// answer repeats an event under the same id, which consumers skip), so repeats of one
/// event id are dropped.
async fn node_events(app: &TestApp, queue: &str, expected: usize) -> Vec<Value> {
    app.adapters.events.flush().await;
    let dead_letters = app.settings.adapters.events_dlq_url.clone().expect("race apps have a dead-letter queue");
    let mut events: HashMap<String, Value> = HashMap::new();
    for message in take_waiting_messages(app, &dead_letters).await {
        let event = json!({"detail-type": message["detailType"], "detail": message["detail"]});
        events.insert(event["detail"]["eventId"].as_str().unwrap().to_owned(), event);
    }
    for _ in 0..3 {
        if events.len() >= expected {
            break;
        }
        for event in take_messages(app, queue, expected - events.len()).await {
            events.insert(event["detail"]["eventId"].as_str().unwrap().to_owned(), event);
        }
    }
    assert_eq!(events.len(), expected, "node events on the bus or dead-lettered");
    events.into_values().collect()
}

/// Asserts one `node.deleted` per node in `deleted` and none for any other node, then
/// applies every event to the document-frequency counters as the similarity worker does
/// and asserts they count exactly the live nodes' keywords: a delete decremented once,
/// with the keywords the node had when it was deleted.
async fn check_events(app: &TestApp, user: &str, events: &[Value], deleted: &HashSet<String>, live: &Inspection) {
    let mut deletions: HashMap<String, usize> = HashMap::new();
    for event in events.iter().filter(|e| e["detail-type"] == "node.deleted") {
        *deletions.entry(event["detail"]["aggregateId"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for (id, count) in &deletions {
        assert_eq!(*count, 1, "node.deleted published {count} times for {id}");
    }
    let published: HashSet<String> = deletions.into_keys().collect();
    let kinds: HashMap<String, usize> = events.iter().fold(HashMap::new(), |mut kinds, event| {
        *kinds.entry(event["detail-type"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        kinds
    });
    assert!(
        published == *deleted,
        "one node.deleted per deleted node; events {kinds:?}, deleted without an event: {:?}, event without a deletion: {:?}",
        deleted.difference(&published).collect::<Vec<_>>(),
        published.difference(deleted).collect::<Vec<_>>()
    );

    let worker = Worker::Similarity(app.adapters.similarity());
    for event in events {
        worker.handle(&event.to_string()).await.unwrap();
    }
    let mut expected: HashMap<String, i64> = HashMap::new();
    for keywords in live.live.values() {
        for keyword in keywords {
            *expected.entry(format!("KW#{keyword}")).or_default() += 1;
        }
    }
    expected.insert("TOTAL".into(), live.live.len() as i64);
    let counters: HashMap<String, i64> = app
        .raw_items_of(user)
        .await
        .iter()
        .filter(|item| string(item, "PK") == format!("USER#{user}#DF") && !string(item, "SK").starts_with("APPLIED#"))
        .map(|item| (string(item, "SK"), item["count"].as_n().unwrap().parse().unwrap()))
        .filter(|(_, count)| *count != 0)
        .collect();
    expected.retain(|_, count| *count != 0);
    assert_eq!(counters, expected, "document-frequency counters match the live nodes");
}

/// Creates one node per content, all at once.
async fn create_all(app: &TestApp, user: &str, contents: Vec<String>) -> Vec<Value> {
    join_all(contents.iter().map(|content| app.create_node(user, content))).await
}

/// Runs the cleanup sweep as the workers do, and returns how many tombstones it purged.
/// With `soft_delete` on, that is every deleted node. With it off, the delete purged in
/// the request, except where other writers kept the node's items busy past the store's
/// retries: such a purge is left to the sweep by design (`delete_nodes`), and the
/// node was deleted (and announced) all the same.
async fn settle(app: &TestApp) -> usize {
    app.run_cleanup().await
}

/// What a race of deletes must leave once cleanup ran: no live node, nothing of the deleted
/// ones in the table or the index, and one `node.deleted` per deleted node on the bus.
async fn all_deleted_and_announced_once(
    app: &TestApp,
    user: &str,
    queue: &str,
    events: usize,
    deleted: &HashSet<String>,
    soft_delete: bool,
) -> Inspection {
    let swept = settle(app).await;
    if !soft_delete {
        assert_eq!(swept, 0, "with no other writer in the way, a hard delete purges in the request");
    }
    let inspection = inspect(app, user, deleted).await;
    assert!(inspection.live.is_empty());
    let bus = node_events(app, queue, events).await;
    check_events(app, user, &bus, deleted, &inspection).await;
    inspection
}

impl Inspection {
    /// Keeps the figures of a race: how many races ran, how many items were checked after.
    fn record(&self, race: &str, soft_delete: bool, races: usize) {
        record_figures(
            &format!("{race}-soft_delete-{soft_delete}"),
            &format!("{races} races, {} items checked", self.items_checked),
        );
    }
}

/// An update racing a delete of the same node: the delete always wins in the end (it
/// deletes the newer version when the update got in first), and no posting of either
/// version survives. The old tombstone, a Put of the node as read, overwrote the update
/// and left its new postings behind for good.
async fn update_racing_delete(soft_delete: bool) {
    let app = &app(soft_delete).await;
    let user = &unique_user();
    let queue = user_queue(app, user, &["node.created", "node.updated", "node.deleted"]).await;
    let (mut events, mut deleted, mut races) = (0, HashSet::new(), 0);
    for round in 0..rounds() {
        let contents =
            (0..RACES_PER_ROUND).map(|i| format!("Granite boulders round {round} race {i} weather slowly")).collect();
        let nodes = create_all(app, user, contents).await;
        events += nodes.len();
        let outcomes = join_all(nodes.iter().map(|node| async {
            let path = format!("/api/v1/nodes/{}", node["id"].as_str().unwrap());
            let update = json!({"content": "Volcanic basalt columns cool quickly", "version": 1});
            futures::join!(app.put(user, &path, update), app.delete(user, &path))
        }))
        .await;
        for (node, (updated, removed)) in nodes.iter().zip(outcomes) {
            races += 1;
            assert_eq!(removed.status, StatusCode::NO_CONTENT, "the delete wins: {}", removed.body);
            match updated.status {
                StatusCode::OK => events += 1,
                StatusCode::NOT_FOUND => {}
                other => panic!("update answered {other}: {}", updated.body),
            }
            events += 1;
            deleted.insert(node["id"].as_str().unwrap().to_owned());
        }
    }
    all_deleted_and_announced_once(app, user, &queue, events, &deleted, soft_delete).await.record(
        "races-update-vs-delete",
        soft_delete,
        races,
    );
}

#[tokio::test]
async fn update_racing_delete_leaves_no_posting_with_soft_delete() {
    update_racing_delete(true).await;
}

#[tokio::test]
async fn update_racing_delete_leaves_no_posting_with_hard_delete() {
    update_racing_delete(false).await;
}

/// Two deletes of one node, single and bulk: exactly one of them deletes it and publishes
/// `node.deleted`; the other answers 404 (`not-found` in a bulk delete).
async fn two_deletes(soft_delete: bool) {
    let app = &app(soft_delete).await;
    let user = &unique_user();
    let queue = user_queue(app, user, &["node.created", "node.deleted"]).await;
    let (mut events, mut deleted, mut races) = (0, HashSet::new(), 0);
    for round in 0..rounds() {
        let contents = (0..RACES_PER_ROUND * 2).map(|i| format!("Copper kettle {round} number {i}")).collect();
        let nodes = create_all(app, user, contents).await;
        events += nodes.len();
        let ids: Vec<String> = nodes.iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
        let (singles, bulk) = ids.split_at(RACES_PER_ROUND);
        let single_races = join_all(singles.iter().map(|id| async move {
            let path = format!("/api/v1/nodes/{id}");
            futures::join!(app.delete(user, &path), app.delete(user, &path))
        }));
        let bulk_delete = || app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(user), Some(json!({"nodeIds": bulk})));
        let (single_results, (first_bulk, second_bulk)) =
            futures::join!(single_races, async { futures::join!(bulk_delete(), bulk_delete()) });
        for (first, second) in single_results {
            races += 1;
            let mut statuses = [first.status.as_u16(), second.status.as_u16()];
            statuses.sort();
            assert_eq!(statuses, [204, 404], "{} / {}", first.body, second.body);
        }
        let mut winners: HashMap<String, usize> = HashMap::new();
        for report in [&first_bulk.body, &second_bulk.body] {
            for id in report["deleted"].as_array().unwrap() {
                *winners.entry(id.as_str().unwrap().to_owned()).or_default() += 1;
            }
            for failure in report["failed"].as_array().unwrap() {
                assert_eq!(failure["code"], "not-found", "{failure}");
            }
        }
        races += bulk.len();
        assert_eq!(winners.len(), bulk.len(), "every id deleted by one of the two bulk deletes");
        assert!(winners.values().all(|count| *count == 1), "an id deleted twice: {winners:?}");
        events += ids.len();
        deleted.extend(ids);
    }
    all_deleted_and_announced_once(app, user, &queue, events, &deleted, soft_delete).await.record(
        "races-two-deletes",
        soft_delete,
        races,
    );
}

#[tokio::test]
async fn two_deletes_of_one_node_publish_one_node_deleted_with_soft_delete() {
    two_deletes(true).await;
}

#[tokio::test]
async fn two_deletes_of_one_node_publish_one_node_deleted_with_hard_delete() {
    two_deletes(false).await;
}

/// Edges created while their end is being deleted: either the edge is refused (404) or
/// the delete removes it; no edge to a missing node is left, in the table or the graph.
async fn delete_racing_edge_creation(soft_delete: bool) {
    let app = &app(soft_delete).await;
    let user = &unique_user();
    let mut races = 0;
    let mut survivors = Vec::new();
    let mut created = HashSet::new();
    for round in 0..rounds() {
        let hub = app.create_node(user, &format!("Lighthouse keeper log {round}")).await;
        let hub_id = hub["id"].as_str().unwrap().to_owned();
        let contents = (0..RACES_PER_ROUND).map(|i| format!("Harbour boat {round} mooring {i}")).collect();
        let others = create_all(app, user, contents).await;
        let links = join_all(others.iter().map(|other| {
            let body = json!({"sourceId": other["id"], "targetId": hub_id});
            async move { app.post(user, "/api/v1/edges", body).await }
        }));
        let hub_path = format!("/api/v1/nodes/{hub_id}");
        let (linked, removed) = futures::join!(links, app.delete(user, &hub_path));
        assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
        for response in linked {
            races += 1;
            assert!(
                [StatusCode::CREATED, StatusCode::NOT_FOUND].contains(&response.status),
                "link answered {}: {}",
                response.status,
                response.body
            );
        }
        survivors.extend(others.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        created.insert(hub_id);
    }
    settle(app).await;
    created.extend(survivors.iter().cloned());
    let inspection = inspect(app, user, &created).await;
    assert_eq!(inspection.live.keys().cloned().collect::<HashSet<_>>(), survivors.into_iter().collect());
    inspection.record("races-delete-vs-link", soft_delete, races);
}

#[tokio::test]
async fn delete_racing_edge_creation_leaves_no_dangling_edge_with_soft_delete() {
    delete_racing_edge_creation(true).await;
}

#[tokio::test]
async fn delete_racing_edge_creation_leaves_no_dangling_edge_with_hard_delete() {
    delete_racing_edge_creation(false).await;
}

const WORDS: [&str; 12] = [
    "granite",
    "basalt",
    "harbour",
    "lighthouse",
    "kettle",
    "copper",
    "sourdough",
    "starter",
    "marathon",
    "borrow",
    "checker",
    "valley",
];

/// Deterministic pseudo-random numbers (SplitMix64), so a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % sides as u64) as usize
    }

    fn content(&mut self) -> String {
        (0..4).map(|_| WORDS[self.roll(WORDS.len())]).collect::<Vec<_>>().join(" ")
    }
}

/// What the writers did that the bus must show.
#[derive(Default)]
struct Tally {
    events: usize,
    created: HashSet<String>,
    deleted: HashSet<String>,
    operations: usize,
}

/// One writer: a sequence of creates, updates, links and deletes on the shared pool.
async fn writer(app: &TestApp, user: &str, pool: &[String], seed: u64, steps: usize) -> Tally {
    let mut dice = Dice(seed);
    let mut tally = Tally::default();
    let mut mine: Vec<String> = Vec::new();
    for _ in 0..steps {
        tally.operations += 1;
        let pick = |dice: &mut Dice, mine: &[String]| {
            let all: Vec<&String> = pool.iter().chain(mine).collect();
            all[dice.roll(all.len())].clone()
        };
        match dice.roll(4) {
            0 => {
                let node = app.create_node(user, &dice.content()).await;
                mine.push(node["id"].as_str().unwrap().to_owned());
                tally.created.insert(node["id"].as_str().unwrap().to_owned());
                tally.events += 1;
            }
            1 => {
                let path = format!("/api/v1/nodes/{}", pick(&mut dice, &mine));
                let current = app.get(user, &path).await;
                if current.status == StatusCode::OK {
                    let body = json!({"content": dice.content(), "version": current.body["version"]});
                    let updated = app.put(user, &path, body).await;
                    match updated.status {
                        StatusCode::OK => tally.events += 1,
                        StatusCode::NOT_FOUND | StatusCode::CONFLICT => {}
                        other => panic!("update answered {other}: {}", updated.body),
                    }
                }
            }
            2 => {
                let body = json!({"sourceId": pick(&mut dice, &mine), "targetId": pick(&mut dice, &mine)});
                let linked = app.post(user, "/api/v1/edges", body).await;
                let expected =
                    [StatusCode::CREATED, StatusCode::NOT_FOUND, StatusCode::CONFLICT, StatusCode::BAD_REQUEST];
                assert!(expected.contains(&linked.status), "link answered {}: {}", linked.status, linked.body);
            }
            _ => {
                let id = pick(&mut dice, &mine);
                let removed = app.delete(user, &format!("/api/v1/nodes/{id}")).await;
                match removed.status {
                    StatusCode::NO_CONTENT => {
                        assert!(tally.deleted.insert(id), "deleted twice");
                        tally.events += 1;
                    }
                    // Gone already, or kept changing under the delete: either way not deleted
                    // by this call, and the node (if any) is still whole.
                    StatusCode::NOT_FOUND | StatusCode::CONFLICT => {}
                    other => panic!("delete answered {other}: {}", removed.body),
                }
            }
        }
    }
    tally
}

/// Twenty writers at once on one user's graph, for several rounds.
async fn many_writers(soft_delete: bool) {
    const WRITERS: u64 = 20;
    const STEPS: usize = 5;
    let app = &app(soft_delete).await;
    let user = &unique_user();
    let queue = user_queue(app, user, &["node.created", "node.updated", "node.deleted"]).await;
    let mut total = Tally::default();
    let mut dice = Dice(7);
    let mut pool_size = 0;
    for round in 0..3 {
        let contents = (0..10).map(|_| dice.content()).collect();
        let pool: Vec<String> =
            create_all(app, user, contents).await.iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
        pool_size += pool.len();
        total.created.extend(pool.iter().cloned());
        total.events += pool.len();
        let tallies = join_all((0..WRITERS).map(|w| writer(app, user, &pool, round * 1_000 + w, STEPS))).await;
        for tally in tallies {
            total.events += tally.events;
            total.operations += tally.operations;
            total.created.extend(tally.created);
            for id in tally.deleted {
                assert!(total.deleted.insert(id), "a node deleted by two writers");
            }
        }
    }
    let swept = settle(app).await;
    let inspection = inspect(app, user, &total.created).await;
    assert!(total.deleted.iter().all(|id| !inspection.live.contains_key(id)));
    let bus = node_events(app, &queue, total.events).await;
    check_events(app, user, &bus, &total.deleted, &inspection).await;
    record_figures(
        &format!("races-many-writers-soft_delete-{soft_delete}"),
        &format!(
            "{} operations by {WRITERS} writers on {pool_size} pooled nodes, {} deleted ({swept} purged by the sweep), {} live, {} items checked",
            total.operations,
            total.deleted.len(),
            inspection.live.len(),
            inspection.items_checked
        ),
    );
}

#[tokio::test]
async fn many_writers_on_one_user_leave_exactly_what_the_survivors_need_with_soft_delete() {
    many_writers(true).await;
}

#[tokio::test]
async fn many_writers_on_one_user_leave_exactly_what_the_survivors_need_with_hard_delete() {
    many_writers(false).await;
}

/// Two instances, each with its own read cache, on one table: A has the node cached at
/// version 1, B updates it to version 2, and A's client sends an update based on version 2.
/// A's stale cache must not refuse it (the table's condition decides), and a client that
/// really is behind still gets 409 with the current version.
#[tokio::test]
async fn an_update_based_on_another_instances_write_is_not_refused_by_a_stale_cache() {
    let settings = || {
        let mut settings = settings_with(&["--expose-costs=on"]);
        // Memory alone: with the shared tier, A's cache would not be stale.
        settings.flags = optimized().with("shared_cache", false).unwrap().into();
        settings
    };
    let (first, second) = (TestApp::spawn_with(settings()).await, TestApp::spawn_with(settings()).await);
    let user = &unique_user();
    let node = first.create_node(user, "Tide tables for the northern harbour").await;
    let path = format!("/api/v1/nodes/{}", node["id"].as_str().unwrap());
    assert_eq!(first.get(user, &path).await.body["version"], 1);
    // The first instance now answers this node from its cache.
    assert_eq!(first.get(user, &path).await.header("x-brain2-aws-calls"), Some("0"));

    let by_second = second.put(user, &path, json!({"content": "Tide tables, corrected", "version": 1})).await;
    assert_eq!(by_second.status, StatusCode::OK, "{}", by_second.body);
    assert_eq!(by_second.body["version"], 2);
    let by_first = first.put(user, &path, json!({"content": "Tide tables, final", "version": 2})).await;
    assert_eq!(by_first.status, StatusCode::OK, "{}", by_first.body);
    assert_eq!(by_first.body["version"], 3);

    let behind = second.put(user, &path, json!({"content": "Too late", "version": 2})).await;
    behind.assert_problem(409, "version-conflict");
    assert!(behind.body["detail"].as_str().unwrap().contains("version 3"), "{}", behind.body);
    assert_eq!(first.get(user, &path).await.body["content"], "Tide tables, final");
}
