use serde_json::json;

use crate::support::{TestApp, take_distinct_events, unique_user, user_queue};

#[tokio::test]
async fn writes_publish_domain_events_to_the_bus() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;
    let node = app.create_node(&user, "Tidal pools hold anemones").await;
    let id = node["id"].as_str().unwrap();
    let other = app.create_node(&user, "Anemones sting small fish").await;
    let other_id = other["id"].as_str().unwrap();
    app.post(&user, "/api/v1/edges", json!({"sourceId": id, "targetId": other_id})).await;
    app.delete(&user, &format!("/api/v1/nodes/{other_id}")).await;

    app.adapters.events.flush().await;
    let mut events = take_distinct_events(&app, &queue, 4).await;
    // Delivery is at least once: a repeat carries the id of the event it repeats.
    let mut seen = std::collections::HashSet::new();
    events.retain(|event| seen.insert(event["detail"]["eventId"].as_str().unwrap_or_default().to_owned()));
    let mut kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (e["detail-type"].as_str().unwrap().to_owned(), e["detail"]["aggregateId"].as_str().unwrap().to_owned())
        })
        .collect();
    kinds.sort();
    let mut expected = vec![
        ("node.created".to_owned(), id.to_owned()),
        ("node.created".to_owned(), other_id.to_owned()),
        ("edge.created".to_owned(), id.to_owned()),
        ("node.deleted".to_owned(), other_id.to_owned()),
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    for event in &events {
        assert_eq!(event["source"], "brain2.backend");
        assert!(uuid::Uuid::parse_str(event["detail"]["eventId"].as_str().unwrap()).is_ok());
        assert!(event["detail"]["version"].as_u64().is_some());
        assert!(event["detail"]["occurredAt"].as_str().is_some());
    }
    let created =
        events.iter().find(|e| e["detail-type"] == "node.created" && e["detail"]["aggregateId"] == id).unwrap();
    // Events carry the stems that counters and similarity match on; the API shows words.
    let stems = brain2::domain::KeywordExtractor::new().extract("Tidal pools hold anemones");
    assert_eq!(created["detail"]["keywords"], json!(stems));
    assert_eq!(node["keywords"], json!(["tidal", "pools", "hold", "anemones"]));
}
