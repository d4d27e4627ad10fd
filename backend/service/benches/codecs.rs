//! What every read and write converts: nodes and edges to and from DynamoDB attribute
//! maps, and the sealed (HMAC-SHA256) list cursors of `GET /nodes`.

use std::hint::black_box;

use brain2::adapters::dynamodb::items::{edge_from_item, edge_to_items, node_from_item, node_to_item};
use brain2::domain::{Edge, EdgeKind, EdgeWeight, KeywordExtractor, Node, NodeDraft, NodeId, UserId};
use brain2::http::cursor::CursorKey;
use brain2::ports::ListCursor;
use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

/// A typical note: a few sentences, the keywords extraction gives them, three tags.
const CONTENT: &str = "Rivers carve valleys over thousands of years. The steep valley north of the village was \
                       shaped by a glacier first, and the river only deepened it afterwards. Sediment from the \
                       upper valley ends up in the delta, which grows a few metres every decade. Worth comparing \
                       with the canyon notes from last summer's trip: same erosion, very different rock.";

fn user() -> UserId {
    UserId::parse("alice").expect("a valid user id")
}

fn node() -> Node {
    let tags = ["geology", "field-trip", "rivers"].map(str::to_owned);
    let draft = NodeDraft::new(CONTENT, &tags).expect("valid note");
    let created = Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).single().expect("a valid time");
    Node::create(user(), draft, &KeywordExtractor::new(), created)
}

fn edge() -> Edge {
    let created = Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).single().expect("a valid time");
    let weight = EdgeWeight::new(0.42).expect("a valid weight");
    Edge::new(user(), NodeId::generate(), NodeId::generate(), weight, EdgeKind::Similarity, created)
        .expect("distinct ends")
}

fn dynamodb_items(c: &mut Criterion) {
    let node = node();
    let node_item = node_to_item(&node);
    assert_eq!(node_from_item(node_item.clone()).expect("the node item reads back"), node);
    let edge = edge();
    let [forward, _] = edge_to_items(&edge);
    assert_eq!(edge_from_item(&edge.user_id, forward.clone()).expect("the edge item reads back"), (edge.clone(), true));

    let mut group = c.benchmark_group("dynamodb_items");
    group.bench_function("node_to_item", |b| b.iter(|| node_to_item(black_box(&node))));
    // Reading consumes the item, so each iteration gets its own copy, made outside the timing.
    group.bench_function("node_from_item", |b| {
        b.iter_batched(|| node_item.clone(), node_from_item, BatchSize::SmallInput)
    });
    group.bench_function("edge_to_items", |b| b.iter(|| edge_to_items(black_box(&edge))));
    group.bench_function("edge_from_item", |b| {
        b.iter_batched(|| forward.clone(), |item| edge_from_item(&edge.user_id, item), BatchSize::SmallInput)
    });
    group.finish();
}

fn list_cursor(c: &mut Criterion) {
    let cursor = ListCursor { created_at_ms: 1_741_944_413_123, node_id: NodeId::generate() };
    let (key, user) = (CursorKey::built_in(), user());
    let encoded = key.seal_listing(&user, cursor);
    assert_eq!(key.open_listing(&user, &encoded).ok(), Some(cursor), "the cursor does not round-trip");

    let mut group = c.benchmark_group("list_cursor");
    group.bench_function("encode", |b| b.iter(|| key.seal_listing(&user, black_box(cursor))));
    group.bench_function("decode", |b| b.iter(|| key.open_listing(&user, black_box(&encoded))));
    group.finish();
}

criterion_group!(benches, dynamodb_items, list_cursor);
criterion_main!(benches);
