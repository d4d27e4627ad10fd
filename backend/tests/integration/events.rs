use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestApp, stack, unique_user};

/// Messages on the bus rule's queue whose event detail names `user`. The queue is
/// shared by the whole test binary, so other users' messages are left alone.
async fn events_of(app: &TestApp, user: &str, expected: usize) -> Vec<Value> {
    let queue = &stack().provisioned.events_queue_url;
    let mut found = Vec::new();
    // A bound on waiting for delivery, not a latency assertion.
    let deadline = Instant::now() + Duration::from_secs(30);
    while found.len() < expected && Instant::now() < deadline {
        let output = app
            .clients
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in output.messages.unwrap_or_default() {
            let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            if envelope["detail"]["userId"] == user {
                found.push(envelope);
                app.clients
                    .sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            } else {
                // Hand it straight back for the test it belongs to.
                app.clients
                    .sqs
                    .change_message_visibility()
                    .queue_url(queue)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    found
}

#[tokio::test]
async fn writes_publish_domain_events_to_the_bus() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let node = app.create_node(&user, "Tidal pools hold anemones").await;
    let id = node["id"].as_str().unwrap();
    let other = app.create_node(&user, "Anemones sting small fish").await;
    let other_id = other["id"].as_str().unwrap();
    app.post(&user, "/api/v1/edges", json!({"sourceId": id, "targetId": other_id})).await;
    app.delete(&user, &format!("/api/v1/nodes/{other_id}")).await;

    let events = events_of(&app, &user, 4).await;
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
    assert_eq!(created["detail"]["keywords"], node["keywords"]);
}
