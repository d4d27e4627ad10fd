//! `brain2`: run the API locally, start the local AWS emulators, provision resources,
//! and sign development tokens.

use std::path::PathBuf;

use anyhow::Context;
use brain2::adapters::aws::{ClientFactory, EndpointOverrides, SdkSource};
use brain2::adapters::provision::provision;
use brain2::config::Settings;
use brain2::devstack::{DevStack, DevStackPaths};
use brain2::domain::UserId;
use brain2::http::auth::issue_token;
use std::io::Write;
use std::time::Duration;

use brain2::bootstrap::Adapters;
use brain2::worker::{Worker, drain, run_in_process};
use brain2::{bootstrap, telemetry};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "brain2", version, about = "Brain2 knowledge graph backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API over HTTP until SIGINT or SIGTERM.
    Serve {
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
        /// Start local emulators first, provision them, and stop them on exit.
        #[arg(long)]
        local_stack: bool,
        /// Also run the cleanup and similarity workers in this process, on the queues
        /// configured (or provisioned with --local-stack).
        #[arg(long)]
        workers: bool,
    },
    /// Run the cleanup worker: drain the cleanup queue, then sweep the deletion queue.
    Cleanup {
        /// Once and exit (the only mode: in AWS the worker is a Lambda function).
        #[arg(long, required = true)]
        once: bool,
        /// Purge soft-deleted nodes older than this many seconds (default BRAIN2_CLEANUP_GRACE_SECONDS).
        #[arg(long)]
        grace_seconds: Option<u64>,
    },
    /// Start the local emulators, provision them, write their endpoints, and wait for Ctrl-C.
    LocalAws {
        #[arg(long, default_value = ".env.local")]
        env_file: PathBuf,
    },
    /// Create the table, event bus and event queue on the configured endpoints.
    Provision,
    /// Print a development JWT for a user, signed with BRAIN2_JWT_SECRET.
    Token {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::from_env()?;
    match cli.command {
        Command::Token { user, ttl_seconds } => {
            let user = UserId::parse(&user)?;
            println!("{}", issue_token(settings.jwt_secret(), &user, ttl_seconds)?);
            Ok(())
        }
        Command::Provision => {
            telemetry::init();
            let clients = environment_factory(&settings).build().await;
            let provisioned = provision(&clients, &settings.table_name, &settings.event_bus).await?;
            tracing::info!(queue = %provisioned.events_queue_url, "provisioned");
            Ok(())
        }
        Command::LocalAws { env_file } => {
            telemetry::init();
            let (stack, _factory) = start_local_stack(&mut settings).await?;
            write_env_file(&stack, &settings, &env_file).with_context(|| format!("writing {}", env_file.display()))?;
            tracing::info!(
                dynamodb = stack.dynamodb_endpoint(),
                moto = stack.moto_endpoint(),
                env_file = %env_file.display(),
                "local AWS emulators are up; Ctrl-C stops them"
            );
            shutdown_signal().await;
            drop(stack);
            Ok(())
        }
        Command::Cleanup { once: _, grace_seconds } => {
            telemetry::init();
            let adapters = Adapters::new(&settings, environment_factory(&settings).build().await);
            let grace = grace_seconds.map_or(settings.cleanup_grace, Duration::from_secs);
            if let Some(queue) = &settings.cleanup_queue_url {
                let drained = drain(&Worker::Cleanup(adapters.cleanup()), &adapters.clients.sqs, queue)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                println!("cleanup queue: {} handled, {} failed", drained.handled, drained.failed);
            }
            let swept = adapters.cleanup().sweep(grace).await?;
            println!("deletion queue: {} purged, {} failed", swept.purged, swept.failed);
            adapters.events.flush().await;
            Ok(())
        }
        Command::Serve { port, local_stack, workers } => {
            telemetry::init();
            let (stack, factory) = if local_stack {
                let (stack, factory) = start_local_stack(&mut settings).await?;
                (Some(stack), factory)
            } else {
                (None, environment_factory(&settings))
            };
            serve(&settings, &factory, port, workers).await?;
            drop(stack);
            Ok(())
        }
    }
}

/// The emulators' endpoints plus the provisioned queues, as `export` lines for a shell.
fn write_env_file(stack: &DevStack, settings: &Settings, path: &std::path::Path) -> std::io::Result<()> {
    stack.write_env_file(path)?;
    let queues = [
        ("BRAIN2_EVENTS_DLQ_URL", &settings.events_dlq_url),
        ("BRAIN2_CLEANUP_QUEUE_URL", &settings.cleanup_queue_url),
        ("BRAIN2_SIMILARITY_QUEUE_URL", &settings.similarity_queue_url),
    ];
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    for (name, value) in queues {
        if let Some(value) = value {
            writeln!(file, "export {name}={value}")?;
        }
    }
    Ok(())
}

fn environment_factory(settings: &Settings) -> ClientFactory {
    ClientFactory::new(SdkSource::Environment, EndpointOverrides::default()).with_network(settings.network.clone())
}

/// Starts and provisions the emulators, and points `settings` at the provisioned queues.
async fn start_local_stack(settings: &mut Settings) -> anyhow::Result<(DevStack, ClientFactory)> {
    let root = std::env::current_dir()?;
    let stack = tokio::task::spawn_blocking(move || -> anyhow::Result<DevStack> {
        Ok(DevStack::start(&DevStackPaths::discover(&root)?)?)
    })
    .await??;
    let endpoints = EndpointOverrides::emulators(stack.dynamodb_endpoint(), stack.moto_endpoint());
    let factory = ClientFactory::new(SdkSource::Emulators, endpoints).with_network(settings.network.clone());
    let provisioned = provision(&factory.build().await, &settings.table_name, &settings.event_bus).await?;
    settings.events_dlq_url = Some(provisioned.publish_dlq_url);
    settings.cleanup_queue_url = Some(provisioned.cleanup_queue_url);
    settings.similarity_queue_url = Some(provisioned.similarity_queue_url);
    Ok((stack, factory))
}

async fn serve(settings: &Settings, factory: &ClientFactory, port: u16, workers: bool) -> anyhow::Result<()> {
    let (router, adapters) = bootstrap::build(settings, factory).await;
    let background = workers.then(|| {
        let queues = adapters.workers(settings);
        tracing::info!(workers = queues.len(), "running the workers in-process");
        tokio::spawn(run_in_process(queues, adapters.cleanup(), adapters.clients.sqs.clone(), settings.cleanup_grace))
    });
    let listener =
        tokio::net::TcpListener::bind(("0.0.0.0", port)).await.with_context(|| format!("binding port {port}"))?;
    tracing::info!(address = %listener.local_addr()?, flags = ?settings.flags, "serving the Brain2 API under /api/v1");
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    if let Some(background) = background {
        background.abort();
    }
    // Events still queued go out before the process ends.
    adapters.events.flush().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
