//! The data every scenario reads, written through the API before measuring: notes for
//! each simulated user, a large graph for `graph_data`, other tenants sharing the table
//! (what a Scan has to wade through), and the batches `bulk_delete_100` deletes.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use brain2::domain::keywords::KeywordExtractor;
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Times one seeding request is sent again after the rate limit refused it.
const RATE_LIMITED_ATTEMPTS: u32 = 30;
/// Requests the seeding keeps in flight.
const SEED_CONCURRENCY: usize = 8;
const BULK_LIMIT: usize = 100;
/// Notes and links of each simulated user.
const NOTES_PER_USER: usize = 20;
const LINKS_PER_USER: usize = 20;

/// Words notes are written from: a shared vocabulary, so keyword search and the
/// similarity worker find real matches.
const VOCABULARY: &[&str] = &[
    "river",
    "valley",
    "glacier",
    "mountain",
    "forest",
    "harbour",
    "ocean",
    "tide",
    "island",
    "desert",
    "orchard",
    "apple",
    "pruning",
    "harvest",
    "garden",
    "compost",
    "seed",
    "bee",
    "honey",
    "meadow",
    "engine",
    "turbine",
    "battery",
    "circuit",
    "sensor",
    "network",
    "protocol",
    "server",
    "database",
    "index",
    "query",
    "cache",
    "latency",
    "throughput",
    "partition",
    "replica",
    "journal",
    "ledger",
    "invoice",
    "budget",
    "market",
    "price",
    "contract",
    "meeting",
    "project",
    "deadline",
    "release",
    "feature",
    "design",
    "sketch",
    "painting",
    "poem",
    "novel",
    "chapter",
    "history",
    "empire",
    "castle",
    "village",
    "bridge",
    "railway",
    "station",
    "voyage",
    "compass",
    "lantern",
    "telescope",
    "planet",
    "comet",
    "galaxy",
    "physics",
    "chemistry",
    "biology",
    "cell",
    "protein",
    "enzyme",
    "recipe",
    "bread",
    "cheese",
    "coffee",
    "tea",
    "spice",
    "kitchen",
    "music",
    "melody",
    "rhythm",
    "guitar",
    "piano",
    "concert",
    "language",
    "grammar",
    "vocabulary",
    "translation",
    "memory",
    "habit",
];

/// Deterministic note text of 10 to 18 words.
pub fn note_text(rng: &mut StdRng) -> String {
    let words = rng.gen_range(10..=18);
    let mut text: Vec<&str> = (0..words).map(|_| *VOCABULARY.choose(rng).unwrap_or(&"note")).collect();
    text.dedup();
    format!("{}.", text.join(" "))
}

/// The vocabulary's words that are keywords (a stop word or a too-short stem is a 400 of
/// `/search`, not a measurement).
pub fn search_terms() -> &'static [&'static str] {
    static TERMS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        let extractor = KeywordExtractor::new();
        VOCABULARY.iter().copied().filter(|word| extractor.normalize_term(word).is_some()).collect()
    });
    &TERMS
}

/// What one simulated user works with.
pub struct UserFixture {
    pub token: String,
    pub node_ids: Vec<String>,
    /// Batches of 100 node ids `bulk_delete_100` takes one at a time.
    pub delete_batches: Mutex<Vec<Vec<String>>>,
}

pub struct Fixture {
    pub users: Vec<UserFixture>,
    /// The user whose graph of `graph_nodes` notes `graph_data` reads.
    pub graph_token: String,
}

/// How much to seed.
pub struct SeedPlan {
    pub graph_nodes: usize,
    pub graph_edges: usize,
    pub tenants: usize,
    pub tenant_nodes: usize,
    /// Batches of 100 notes for `bulk_delete_100`, for each of the first
    /// `delete_batch_users` users.
    pub delete_batches: usize,
    pub delete_batch_users: usize,
}

/// The API as the seeding uses it.
pub struct Api {
    client: reqwest::Client,
    base_url: String,
}

impl Api {
    pub fn new(base_url: &str) -> Self {
        Self { client: reqwest::Client::new(), base_url: base_url.trim_end_matches('/').to_owned() }
    }

    /// Sends one request; one the per-user rate limit refused (429: nothing was done) is
    /// sent again after the `Retry-After` it names, as a polite client would: the seed is
    /// not what a run measures, and a deployed API limits the seeding user like any other.
    async fn send(&self, token: &str, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let mut refused = 0;
        loop {
            let response = self
                .client
                .request(method.clone(), format!("{}{path}", self.base_url))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS && refused < RATE_LIMITED_ATTEMPTS {
                refused += 1;
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 10))).await;
                continue;
            }
            if !status.is_success() && status != reqwest::StatusCode::CONFLICT {
                bail!("{method} {path} answered {status}: {answer}");
            }
            return Ok(answer);
        }
    }

    /// Creates the notes in bulk calls of 100 and returns their ids.
    pub async fn create_notes(&self, token: &str, texts: Vec<String>) -> anyhow::Result<Vec<String>> {
        let chunks: Vec<Vec<String>> = texts.chunks(BULK_LIMIT).map(<[String]>::to_vec).collect();
        let created: Vec<Vec<String>> = stream::iter(chunks)
            .map(|chunk| async move {
                let nodes: Vec<Value> = chunk.iter().map(|content| json!({ "content": content })).collect();
                let body = self.send(token, reqwest::Method::POST, "/nodes/bulk", json!({ "nodes": nodes })).await?;
                let failed = body["failed"].as_array().map_or(0, Vec::len);
                if failed > 0 {
                    bail!("seeding: {failed} notes of a bulk create failed: {}", body["failed"]);
                }
                Ok(ids_of(&body["created"]))
            })
            .buffered(SEED_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(created.into_iter().flatten().collect())
    }

    /// Links random distinct pairs of `ids` until `edges` links exist (or every pair is taken).
    pub async fn link_randomly(
        &self,
        token: &str,
        ids: &[String],
        edges: usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        let possible = ids.len() * ids.len().saturating_sub(1) / 2;
        let mut pairs = std::collections::HashSet::new();
        while pairs.len() < edges.min(possible) {
            let (a, b) = (rng.gen_range(0..ids.len()), rng.gen_range(0..ids.len()));
            if a != b {
                pairs.insert((a.min(b), a.max(b)));
            }
        }
        stream::iter(pairs)
            .map(|(a, b)| {
                let body = json!({ "sourceId": ids[a], "targetId": ids[b] });
                self.send(token, reqwest::Method::POST, "/edges", body)
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }
}

fn ids_of(nodes: &Value) -> Vec<String> {
    nodes.as_array().into_iter().flatten().filter_map(|node| node["id"].as_str().map(str::to_owned)).collect()
}

/// Seeds everything; `token_of(user)` signs for a user id (locally) or is the one token
/// of a deployed run. Deterministic for a given seed.
pub async fn seed(
    api: &Api,
    plan: &SeedPlan,
    users: usize,
    token_of: impl Fn(&str) -> anyhow::Result<String>,
    run_id: &str,
) -> anyhow::Result<Fixture> {
    let mut rng = StdRng::seed_from_u64(7);
    let graph_token = token_of(&format!("lt-graph-{run_id}"))?;
    let graph_notes = (0..plan.graph_nodes).map(|_| note_text(&mut rng)).collect();
    let graph_ids = api.create_notes(&graph_token, graph_notes).await?;
    api.link_randomly(&graph_token, &graph_ids, plan.graph_edges, &mut rng).await?;
    for tenant in 0..plan.tenants {
        let token = token_of(&format!("lt-tenant{tenant}-{run_id}"))?;
        api.create_notes(&token, (0..plan.tenant_nodes).map(|_| note_text(&mut rng)).collect()).await?;
    }
    let mut fixtures = Vec::with_capacity(users);
    for user in 0..users {
        let token = token_of(&format!("lt-user{user}-{run_id}"))?;
        let node_ids = api.create_notes(&token, (0..NOTES_PER_USER).map(|_| note_text(&mut rng)).collect()).await?;
        api.link_randomly(&token, &node_ids, LINKS_PER_USER, &mut rng).await?;
        let batches = if user < plan.delete_batch_users { plan.delete_batches } else { 0 };
        let doomed = (0..batches * BULK_LIMIT).map(|_| note_text(&mut rng)).collect();
        let doomed_ids = api.create_notes(&token, doomed).await?;
        let delete_batches = doomed_ids.chunks(BULK_LIMIT).map(<[String]>::to_vec).collect();
        fixtures.push(UserFixture { token, node_ids, delete_batches: Mutex::new(delete_batches) });
    }
    Ok(Fixture { users: fixtures, graph_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_search_term_is_a_keyword_and_most_of_the_vocabulary_is() {
        let extractor = KeywordExtractor::new();
        assert!(search_terms().iter().all(|term| extractor.normalize_term(term).is_some()));
        assert!(search_terms().len() * 10 >= VOCABULARY.len() * 9, "{:?}", search_terms());
    }
}
