//! The scenarios, with fixed names, and what each request cost as its headers report it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use goose::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::seed::{Fixture, UserFixture, note_text, search_terms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioName {
    #[value(name = "create_node")]
    CreateNode,
    #[value(name = "get_node")]
    GetNode,
    #[value(name = "list_nodes")]
    ListNodes,
    #[value(name = "graph_data")]
    GraphData,
    #[value(name = "search")]
    Search,
    #[value(name = "neighbors")]
    Neighbors,
    #[value(name = "bulk_create_100")]
    #[serde(rename = "bulk_create_100")]
    BulkCreate100,
    #[value(name = "bulk_delete_100")]
    #[serde(rename = "bulk_delete_100")]
    BulkDelete100,
    #[value(name = "mixed")]
    Mixed,
}

/// The operations scenarios are made of; `mixed` weighs them like a person's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CreateNode,
    GetNode,
    ListNodes,
    GraphData,
    Search,
    Neighbors,
    BulkCreate100,
    BulkDelete100,
}

/// Reads, then writes, then the occasional bulk import: (operation, weight).
const MIXED: &[(Operation, usize)] = &[
    (Operation::GetNode, 30),
    (Operation::Neighbors, 15),
    (Operation::Search, 15),
    (Operation::ListNodes, 10),
    (Operation::GraphData, 5),
    (Operation::CreateNode, 20),
    (Operation::BulkCreate100, 1),
];

impl ScenarioName {
    pub const ALL: [ScenarioName; 9] = [
        Self::CreateNode,
        Self::GetNode,
        Self::ListNodes,
        Self::GraphData,
        Self::Search,
        Self::Neighbors,
        Self::BulkCreate100,
        Self::BulkDelete100,
        Self::Mixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateNode => "create_node",
            Self::GetNode => "get_node",
            Self::ListNodes => "list_nodes",
            Self::GraphData => "graph_data",
            Self::Search => "search",
            Self::Neighbors => "neighbors",
            Self::BulkCreate100 => "bulk_create_100",
            Self::BulkDelete100 => "bulk_delete_100",
            Self::Mixed => "mixed",
        }
    }

    fn operations(self) -> Vec<(Operation, usize)> {
        let single = |operation| vec![(operation, 1)];
        match self {
            Self::CreateNode => single(Operation::CreateNode),
            Self::GetNode => single(Operation::GetNode),
            Self::ListNodes => single(Operation::ListNodes),
            Self::GraphData => single(Operation::GraphData),
            Self::Search => single(Operation::Search),
            Self::Neighbors => single(Operation::Neighbors),
            Self::BulkCreate100 => single(Operation::BulkCreate100),
            Self::BulkDelete100 => single(Operation::BulkDelete100),
            Self::Mixed => MIXED.to_vec(),
        }
    }

    /// Whether the scenario runs with the bulk users only.
    pub fn is_bulk(self) -> bool {
        matches!(self, Self::BulkCreate100 | Self::BulkDelete100)
    }

    /// Whether the scenario consumes the pre-created delete batches, and so must stop
    /// after as many iterations as there are batches.
    pub fn consumes_delete_batches(self) -> bool {
        self == Self::BulkDelete100
    }
}

/// The request-path costs of a scenario's responses, from the `x-brain2-*` headers.
#[derive(Debug, Default)]
pub struct CostTally {
    responses: AtomicU64,
    aws_calls: AtomicU64,
    capacity_milliunits: AtomicU64,
}

impl CostTally {
    pub(crate) fn record(&self, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.parse::<f64>().ok();
        let (Some(calls), Some(capacity)) = (number("x-brain2-aws-calls"), number("x-brain2-capacity")) else {
            return;
        };
        self.responses.fetch_add(1, Ordering::Relaxed);
        self.aws_calls.fetch_add(calls as u64, Ordering::Relaxed);
        self.capacity_milliunits.fetch_add((capacity * 1000.0).round() as u64, Ordering::Relaxed);
    }

    /// Responses that carried cost headers (none from a deployment that hides them).
    pub fn responses(&self) -> u64 {
        self.responses.load(Ordering::Relaxed)
    }

    pub fn aws_calls_per_response(&self) -> Option<f64> {
        let responses = self.responses();
        (responses > 0).then(|| self.aws_calls.load(Ordering::Relaxed) as f64 / responses as f64)
    }

    /// The capacity units of every response so far.
    pub fn capacity_units(&self) -> f64 {
        self.capacity_milliunits.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub fn capacity_per_response(&self) -> Option<f64> {
        let responses = self.responses();
        (responses > 0).then(|| self.capacity_units() / responses as f64)
    }
}

/// Everything a transaction needs, shared by the simulated users.
struct Context {
    base_url: String,
    fixture: Arc<Fixture>,
    tally: Arc<CostTally>,
    name: &'static str,
}

impl Context {
    fn user(&self, goose: &GooseUser) -> &UserFixture {
        &self.fixture.users[goose.weighted_users_index % self.fixture.users.len()]
    }
}

/// The goose scenario of `name`; every request it makes is named after the scenario.
pub fn scenario(
    name: ScenarioName,
    base_url: &str,
    fixture: Arc<Fixture>,
    tally: Arc<CostTally>,
) -> Result<Scenario, GooseError> {
    let base_url = base_url.trim_end_matches('/').to_owned();
    let context = Arc::new(Context { base_url, fixture, tally, name: name.as_str() });
    let mut scenario = Scenario::new(name.as_str());
    for (operation, weight) in name.operations() {
        let context = context.clone();
        let run: TransactionFunction = Arc::new(move |user| {
            let context = context.clone();
            Box::pin(async move { perform(operation, &context, user).await })
        });
        scenario = scenario.register_transaction(Transaction::new(run).set_name(name.as_str()).set_weight(weight)?);
    }
    Ok(scenario)
}

async fn perform(operation: Operation, context: &Context, user: &mut GooseUser) -> TransactionResult {
    let mut rng = StdRng::from_entropy();
    let own = context.user(user);
    let token = own.token.clone();
    let any_node = |rng: &mut StdRng| own.node_ids.choose(rng).cloned().unwrap_or_default();
    let (method, path, body) = match operation {
        Operation::CreateNode => {
            (GooseMethod::Post, "/nodes".to_owned(), Some(json!({ "content": note_text(&mut rng) })))
        }
        Operation::GetNode => (GooseMethod::Get, format!("/nodes/{}", any_node(&mut rng)), None),
        Operation::ListNodes => (GooseMethod::Get, "/nodes?limit=50".to_owned(), None),
        Operation::GraphData => {
            // The first page (100 nodes by default): what a client reads when it opens the graph.
            let graph_token = context.fixture.graph_token.clone();
            return send(context, user, &graph_token, GooseMethod::Get, "/graph-data", None).await;
        }
        Operation::Search => {
            let term = search_terms()[rng.gen_range(0..search_terms().len())];
            (GooseMethod::Get, format!("/search?keyword={term}&limit=20"), None)
        }
        Operation::Neighbors => (GooseMethod::Get, format!("/nodes/{}/neighbors", any_node(&mut rng)), None),
        Operation::BulkCreate100 => {
            let nodes: Vec<Value> = (0..100).map(|_| json!({ "content": note_text(&mut rng) })).collect();
            (GooseMethod::Post, "/nodes/bulk".to_owned(), Some(json!({ "nodes": nodes })))
        }
        Operation::BulkDelete100 => {
            let batch = own.delete_batches.lock().ok().and_then(|mut batches| batches.pop());
            // The iterations are capped at the batches created; nothing left means done.
            let Some(batch) = batch else { return Ok(()) };
            (GooseMethod::Delete, "/nodes/bulk".to_owned(), Some(json!({ "nodeIds": batch })))
        }
    };
    send(context, user, &token, method, &path, body).await
}

async fn send(
    context: &Context,
    user: &mut GooseUser,
    token: &str,
    method: GooseMethod,
    path: &str,
    body: Option<Value>,
) -> TransactionResult {
    let url = format!("{}{path}", context.base_url);
    let mut builder = user.get_request_builder(&method, &url)?.bearer_auth(token);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(url.as_str())
        .name(context.name)
        .set_request_builder(builder)
        .build();
    let answer = user.request(request).await?;
    if let Ok(response) = &answer.response {
        context.tally.record(response.headers());
    }
    Ok(())
}
