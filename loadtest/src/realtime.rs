//! Real-time updates under load (`docs/realtime.md`): `REALTIME_CLIENTS` users of one
//! `brain2 serve --workers` with the optimized profile, on emulators of their own, each with
//! one WebSocket open and `ready` before anyone writes, then each creating a note every
//! `REALTIME_WRITE_INTERVAL_MS` for `REALTIME_SECONDS`, as people typing notes would.
//!
//! Measured: write-to-message, from just before `POST /nodes` is sent to the arrival of that
//! note's `node.created` on the writer's own socket, which covers the whole path (the write,
//! its event on the bus, the realtime queue, the server's feed, the socket), beside the
//! POST's own time; the change messages received and the frames that carried them; the
//! notes whose message had not come `REALTIME_GRACE_SECONDS` after the last write (lost);
//! and the messages naming another client's note (foreign), which must never be.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::config::{HarnessConfig, ProfileSpec};
use crate::lambda_emulator::percentile;
use crate::local_server::LocalServer;
use crate::report::figure_to;
use crate::run::{progress, seeded_stack, single_instance_environment, token_for};
use crate::seed::{Fixture, SeedPlan, note_text};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The profile measured: the one production runs.
const PROFILE: &str = "optimized";
/// Longest wait for a socket's upgrade and its `ready`: a bound for a busy two-core
/// machine, not a figure.
const READY_PATIENCE: Duration = Duration::from_secs(30);
/// How often the grace period looks whether every note's message has come.
const GRACE_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Serialize)]
pub struct RealtimeReport {
    pub profile: String,
    pub clients: usize,
    pub seconds: usize,
    pub write_interval_ms: u64,
    pub grace_seconds: u64,
    /// Notes created (answered 201) by all clients, and creates that failed or were refused.
    pub writes: usize,
    pub failed_writes: usize,
    /// Writes whose `node.created` came on the writer's socket, and those whose message
    /// had not come by the end of the grace period.
    pub delivered: usize,
    pub lost: usize,
    /// Change messages received on every socket (every type, redeliveries included), the
    /// frames that carried them, and change messages per such frame.
    pub received: usize,
    pub frames: usize,
    pub messages_per_frame: Option<f64>,
    /// Change messages naming a note of another client.
    pub foreign_messages: usize,
    /// Sockets the server closed, or that failed, before the client closed them.
    pub dropped_sockets: usize,
    /// Write-to-message of the delivered writes, in milliseconds.
    pub write_to_message_p50_ms: Option<f64>,
    pub write_to_message_p99_ms: Option<f64>,
    pub write_to_message_max_ms: Option<f64>,
    /// The POSTs' own times (until the created note was read), for comparison.
    pub post_p50_ms: Option<f64>,
    pub post_p99_ms: Option<f64>,
}

/// The realtime measurement, when the run is local and `REALTIME_CLIENTS` is not 0.
pub async fn measure(config: &HarnessConfig, run_id: &str, jwt_secret: &str) -> anyhow::Result<Option<RealtimeReport>> {
    if !config.is_local() || config.realtime_clients == 0 {
        return Ok(None);
    }
    let folder = config.out.join("realtime");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)?;
    // Each client has its seeded notes (the similarity worker links new notes to them);
    // nothing else is needed.
    let plan = SeedPlan {
        graph_nodes: 0,
        graph_edges: 0,
        tenants: 0,
        tenant_nodes: 0,
        delete_batches: 0,
        delete_batch_users: 0,
    };
    let profile = ProfileSpec::parse(PROFILE)?;
    let labelled = ProfileSpec { name: "realtime".to_owned(), ..profile.clone() };
    let token_of = |user: &str| token_for(config, jwt_secret, user);
    let name = format!("rt-{run_id}");
    let (stack, resources, fixture) =
        seeded_stack(&labelled, &name, &plan, config.realtime_clients, token_of, jwt_secret).await?;
    let brain2 = HarnessConfig::sibling_binary(&config.brain2_bin, "brain2")?;
    let environment = single_instance_environment(&stack, &resources);
    let log = folder.join("server.log");
    // With the workers: that process alone reads the realtime queue and feeds the sockets.
    let server = LocalServer::start(&brain2, &environment, &profile, config, jwt_secret, &log, true).await?;
    let clients = run_clients(config, &server.base_url, &fixture).await;
    server.stop().await?;
    drop(stack);
    let report = RealtimeReport::of(config, &clients?);
    progress(summary(&report));
    Ok(Some(report))
}

/// One client's side of the run: its seeded notes, what it wrote and what its socket received.
struct Client {
    seeded: Vec<String>,
    writes: Writes,
    inbox: Inbox,
}

/// One client's notes: each created note's id and when its POST was sent, the POSTs'
/// times, and the creates that failed.
#[derive(Debug, Default)]
struct Writes {
    sent: Vec<(String, Instant)>,
    post_ms: Vec<f64>,
    failed: usize,
}

/// What one client's socket received after `ready`.
#[derive(Debug, Default)]
struct Inbox {
    /// The first `node.created` of each note, and when it arrived.
    created: HashMap<String, Instant>,
    /// The notes each change message names: its `nodeId`, or its edge's ends.
    named: Vec<Vec<String>>,
    /// Frames holding at least one change message.
    frames: usize,
    /// Whether the socket ended before the client closed it.
    dropped: bool,
}

impl Inbox {
    fn record(&mut self, messages: &[Value], arrived: Instant) {
        let changes: Vec<&Value> = messages.iter().filter(|message| is_change(message)).collect();
        if changes.is_empty() {
            return;
        }
        self.frames += 1;
        for change in changes {
            if change["type"] == "node.created"
                && let Some(node) = change["nodeId"].as_str()
            {
                self.created.entry(node.to_owned()).or_insert(arrived);
            }
            let ends = [&change["nodeId"], &change["edge"]["source"], &change["edge"]["target"]];
            self.named.push(ends.iter().filter_map(|node| node.as_str().map(str::to_owned)).collect());
        }
    }
}

fn is_change(message: &Value) -> bool {
    message["type"].as_str().is_some_and(|kind| kind.starts_with("node.") || kind.starts_with("edge."))
}

fn lock(inbox: &Mutex<Inbox>) -> MutexGuard<'_, Inbox> {
    inbox.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Every client's socket opened and `ready` first, then every client writing at once,
/// then the grace period for the messages still on their way.
async fn run_clients(config: &HarnessConfig, base_url: &str, fixture: &Fixture) -> anyhow::Result<Vec<Client>> {
    let clients = fixture.users.len();
    progress(format_args!("realtime: opening {clients} WebSockets"));
    let mut sockets = Vec::with_capacity(clients);
    for user in &fixture.users {
        sockets.push(connect(base_url, &user.token).await?);
    }
    let inboxes: Vec<Arc<Mutex<Inbox>>> = (0..clients).map(|_| Arc::default()).collect();
    let (stops, listeners): (Vec<_>, Vec<_>) = sockets
        .into_iter()
        .zip(&inboxes)
        .map(|(socket, inbox)| {
            let (stop, stopped) = oneshot::channel();
            (stop, tokio::spawn(listen(socket, inbox.clone(), stopped)))
        })
        .unzip();

    progress(format_args!(
        "realtime: {clients} clients, a note each every {} ms for {} s",
        config.realtime_write_interval_ms, config.realtime_seconds
    ));
    let interval = Duration::from_millis(config.realtime_write_interval_ms.max(1));
    let start = Instant::now();
    let until = start + Duration::from_secs(config.realtime_seconds.max(1) as u64);
    let http = reqwest::Client::new();
    let url = format!("{}/nodes", base_url.trim_end_matches('/'));
    let writers: Vec<_> = fixture
        .users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            // Spread over the interval, so that the clients' notes do not all land at once.
            let first = start + interval.mul_f64(index as f64 / clients as f64);
            let writer = NoteWriter { http: http.clone(), url: url.clone(), token: user.token.clone() };
            tokio::spawn(writer.write(first, interval, until, index as u64))
        })
        .collect();
    let mut writes = Vec::with_capacity(clients);
    for writer in writers {
        writes.push(writer.await?);
    }

    let deadline = Instant::now() + Duration::from_secs(config.realtime_grace_seconds);
    let all_arrived = || {
        writes.iter().zip(&inboxes).all(|(writes, inbox)| {
            let inbox = lock(inbox);
            writes.sent.iter().all(|(node, _)| inbox.created.contains_key(node))
        })
    };
    while !all_arrived() && Instant::now() < deadline {
        tokio::time::sleep(GRACE_POLL).await;
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for listener in listeners {
        listener.await?;
    }
    Ok(fixture
        .users
        .iter()
        .zip(writes)
        .zip(inboxes)
        .map(|((user, writes), inbox)| Client {
            seeded: user.node_ids.clone(),
            writes,
            inbox: std::mem::take(&mut *lock(&inbox)),
        })
        .collect())
}

/// A socket of the user of `token`, once the server has said `ready`.
async fn connect(base_url: &str, token: &str) -> anyhow::Result<Socket> {
    let url = format!("{}/ws?token={token}", base_url.trim_end_matches('/').replacen("http://", "ws://", 1));
    let (mut socket, _) = connect_async(url).await.context("opening a WebSocket")?;
    tokio::time::timeout(READY_PATIENCE, until_ready(&mut socket))
        .await
        .with_context(|| format!("no ready on a WebSocket within {READY_PATIENCE:?}"))??;
    Ok(socket)
}

async fn until_ready(socket: &mut Socket) -> anyhow::Result<()> {
    while let Some(frame) = socket.next().await {
        if let Message::Text(text) = frame.context("reading a WebSocket")? {
            let messages: Vec<Value> = serde_json::from_str(text.as_str()).context("a frame that is not an array")?;
            if messages.iter().any(|message| message["type"] == "ready") {
                return Ok(());
            }
        }
    }
    bail!("the WebSocket closed before ready")
}

/// Reads `socket` into `inbox` until told to stop, then closes it. Reading is what
/// answers the server's pings (tungstenite sends the pongs).
async fn listen(mut socket: Socket, inbox: Arc<Mutex<Inbox>>, mut stop: oneshot::Receiver<()>) {
    loop {
        let frame = tokio::select! {
            _ = &mut stop => {
                let _ = socket.close(None).await;
                return;
            }
            frame = socket.next() => frame,
        };
        let arrived = Instant::now();
        match frame {
            Some(Ok(Message::Text(text))) => {
                let messages: Vec<Value> = serde_json::from_str(text.as_str()).unwrap_or_default();
                lock(&inbox).record(&messages, arrived);
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                lock(&inbox).dropped = true;
                return;
            }
            Some(Ok(_)) => {}
        }
    }
}

/// One client's writer: notes through the REST API, as that client's user.
struct NoteWriter {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl NoteWriter {
    /// A note at `first` and every `interval` after it until `until`; a slow answer
    /// delays the next note rather than bunching them.
    async fn write(self, first: Instant, interval: Duration, until: Instant, seed: u64) -> Writes {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ticks = tokio::time::interval_at(first.into(), interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut writes = Writes::default();
        loop {
            ticks.tick().await;
            if Instant::now() >= until {
                return writes;
            }
            let body = json!({ "content": note_text(&mut rng) });
            let sent = Instant::now();
            let created = self.create(&body).await;
            match created {
                Some(node) => {
                    writes.post_ms.push(ms(sent.elapsed()));
                    writes.sent.push((node, sent));
                }
                None => writes.failed += 1,
            }
        }
    }

    /// The id of the note created, or `None` if the create failed.
    async fn create(&self, body: &Value) -> Option<String> {
        let response = self.http.post(&self.url).bearer_auth(&self.token).json(body).send().await.ok()?;
        if response.status() != reqwest::StatusCode::CREATED {
            return None;
        }
        let node: Value = response.json().await.ok()?;
        node["id"].as_str().map(str::to_owned)
    }
}

impl RealtimeReport {
    fn of(config: &HarnessConfig, clients: &[Client]) -> Self {
        let mut owners: HashMap<&str, usize> = HashMap::new();
        for (index, client) in clients.iter().enumerate() {
            let written = client.writes.sent.iter().map(|(node, _)| node);
            for node in client.seeded.iter().chain(written) {
                owners.insert(node.as_str(), index);
            }
        }
        let (mut latencies, mut post_ms) = (Vec::new(), Vec::new());
        let (mut writes, mut failed_writes, mut received, mut frames, mut foreign_messages) = (0, 0, 0, 0, 0);
        for (index, client) in clients.iter().enumerate() {
            let (sent, inbox) = (&client.writes.sent, &client.inbox);
            writes += sent.len();
            failed_writes += client.writes.failed;
            post_ms.extend_from_slice(&client.writes.post_ms);
            latencies.extend(sent.iter().filter_map(|(node, sent)| {
                inbox.created.get(node).map(|arrived| ms(arrived.saturating_duration_since(*sent)))
            }));
            received += inbox.named.len();
            frames += inbox.frames;
            foreign_messages += inbox
                .named
                .iter()
                .filter(|nodes| nodes.iter().any(|node| owners.get(node.as_str()).is_some_and(|owner| *owner != index)))
                .count();
        }
        Self {
            profile: PROFILE.to_owned(),
            clients: clients.len(),
            seconds: config.realtime_seconds.max(1),
            write_interval_ms: config.realtime_write_interval_ms,
            grace_seconds: config.realtime_grace_seconds,
            writes,
            failed_writes,
            delivered: latencies.len(),
            lost: writes - latencies.len(),
            received,
            frames,
            messages_per_frame: (frames > 0).then(|| received as f64 / frames as f64),
            foreign_messages,
            dropped_sockets: clients.iter().filter(|client| client.inbox.dropped).count(),
            write_to_message_p50_ms: percentile(&latencies, 50.0),
            write_to_message_p99_ms: percentile(&latencies, 99.0),
            write_to_message_max_ms: latencies.iter().copied().reduce(f64::max),
            post_p50_ms: percentile(&post_ms, 50.0),
            post_p99_ms: percentile(&post_ms, 99.0),
        }
    }

    /// The section of `report.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## Realtime: {} clients of one `brain2 serve --workers` ({}), a note each every {} ms for {} s\n",
            self.clients, self.profile, self.write_interval_ms, self.seconds
        );
        let _ = writeln!(
            out,
            "Write-to-message: from just before `POST /nodes` is sent to that note's `node.created` on the writer's own WebSocket; lost: no message within {} s of the last write; foreign: a message naming another client's note.\n",
            self.grace_seconds
        );
        let _ = writeln!(
            out,
            "| writes (failed) | received | frames | messages/frame | lost | foreign | dropped sockets | write-to-message p50 / p99 / max ms | POST p50 / p99 ms |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} |",
            self.writes,
            self.failed_writes,
            self.received,
            self.frames,
            figure_to(self.messages_per_frame, 2),
            self.lost,
            self.foreign_messages,
            self.dropped_sockets,
            figure_to(self.write_to_message_p50_ms, 1),
            figure_to(self.write_to_message_p99_ms, 1),
            figure_to(self.write_to_message_max_ms, 1),
            figure_to(self.post_p50_ms, 1),
            figure_to(self.post_p99_ms, 1)
        );
        out
    }
}

fn summary(report: &RealtimeReport) -> String {
    format!(
        "  realtime: {} writes ({} failed), {} messages in {} frames, {} lost, {} foreign, {} sockets dropped, write-to-message p50 {} ms, p99 {} ms, max {} ms, POST p50 {} ms, p99 {} ms",
        report.writes,
        report.failed_writes,
        report.received,
        report.frames,
        report.lost,
        report.foreign_messages,
        report.dropped_sockets,
        figure_to(report.write_to_message_p50_ms, 1),
        figure_to(report.write_to_message_p99_ms, 1),
        figure_to(report.write_to_message_max_ms, 1),
        figure_to(report.post_p50_ms, 1),
        figure_to(report.post_p99_ms, 1)
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn created(node: &str) -> Value {
        json!({ "type": "node.created", "eventId": "e", "nodeId": node, "version": 1 })
    }

    fn linked(source: &str, target: &str) -> Value {
        json!({ "type": "edge.created", "eventId": "e", "edge": { "source": source, "target": target } })
    }

    #[test]
    fn a_write_is_timed_to_its_first_message_on_its_own_socket_and_others_notes_are_foreign() {
        let config = HarnessConfig::try_parse_from(["brain2-loadtest"]).unwrap();
        let sent = Instant::now();
        let at = |ms: u64| sent + Duration::from_millis(ms);
        let mut alice = Client {
            seeded: vec!["a0".to_owned()],
            writes: Writes {
                sent: vec![("a1".to_owned(), sent), ("a2".to_owned(), sent)],
                post_ms: vec![5.0, 7.0],
                failed: 1,
            },
            inbox: Inbox::default(),
        };
        // a1 twice (redelivered) in one frame, a similarity edge to her seeded note, the
        // ready of no change; a2 never comes.
        alice.inbox.record(&[created("a1"), created("a1"), linked("a1", "a0")], at(40));
        alice.inbox.record(&[json!({ "type": "pong" })], at(45));
        let mut bob = Client {
            seeded: vec!["b0".to_owned()],
            writes: Writes { sent: vec![("b1".to_owned(), sent)], post_ms: vec![6.0], failed: 0 },
            inbox: Inbox::default(),
        };
        bob.inbox.record(&[created("b1")], at(20));
        bob.inbox.record(&[created("a2")], at(30));
        bob.inbox.dropped = true;

        let report = RealtimeReport::of(&config, &[alice, bob]);
        assert_eq!((report.writes, report.failed_writes, report.delivered, report.lost), (3, 1, 2, 1));
        assert_eq!((report.received, report.frames, report.foreign_messages), (5, 3, 1));
        assert_eq!(report.messages_per_frame.map(|m| (m * 100.0).round()), Some(167.0));
        assert_eq!(report.dropped_sockets, 1);
        assert_eq!(report.write_to_message_p50_ms.map(f64::round), Some(20.0));
        assert_eq!(report.write_to_message_max_ms.map(f64::round), Some(40.0));
        assert_eq!(report.post_p99_ms, Some(7.0));
        let markdown = report.markdown();
        assert!(
            markdown.contains("| 3 (1) | 5 | 3 | 1.67 | 1 | 1 | 1 | 20.0 / 40.0 / 40.0 | 6.0 / 7.0 |"),
            "{markdown}"
        );
    }
}
