//! `brain2`: run the API locally, start the local AWS emulators, provision resources,
//! run the cleanup once, and sign development tokens.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use brain2::adapters::aws::{ClientFactory, EndpointOverrides, SdkSource};
use brain2::bootstrap::{Adapters, Settings};
use brain2::domain::UserId;
use brain2::telemetry;
use brain2::worker::{Worker, drain};
use brain2_cli::{local_stack, serve, token};
use brain2_devstack::provision;
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
        /// The address to listen on; an address other machines can reach needs a
        /// BRAIN2_JWT_SECRET of its own (the development secret is refused there).
        #[arg(long, env = "BRAIN2_BIND", default_value = serve::DEFAULT_BIND)]
        bind: IpAddr,
        /// Serve Prometheus metrics at http://ADDRESS/metrics and the full health report at
        /// http://ADDRESS/health (a loopback address only).
        #[arg(long, env = "BRAIN2_METRICS_ADDR", value_name = "ADDRESS")]
        metrics_addr: Option<SocketAddr>,
        /// Start local emulators first, provision them, and stop them on exit.
        #[arg(long)]
        local_stack: bool,
        /// Also run the cleanup and similarity workers in this process, on the queues
        /// configured (or provisioned with --local-stack).
        #[arg(long)]
        workers: bool,
        #[command(flatten)]
        settings: Settings,
    },
    /// Run the cleanup worker: drain the cleanup queue, then sweep the deletion queue.
    Cleanup {
        /// Once and exit (the only mode: in AWS the worker is a Lambda function).
        #[arg(long, required = true)]
        once: bool,
        #[command(flatten)]
        settings: Settings,
    },
    /// Start the local emulators, provision them, write their endpoints, and wait for Ctrl-C.
    LocalAws {
        #[arg(long, default_value = ".env.local")]
        env_file: PathBuf,
        #[command(flatten)]
        settings: Settings,
    },
    /// Create the table, event bus, rules and queues on the configured endpoints.
    Provision {
        #[command(flatten)]
        settings: Settings,
    },
    /// Print a development JWT for a user, signed with BRAIN2_JWT_SECRET (with the first of
    /// BRAIN2_JWT_ISSUER and BRAIN2_JWT_AUDIENCE as `iss` and `aud` when they are set).
    Token {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: i64,
        #[command(flatten)]
        settings: Settings,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Token { user, ttl_seconds, settings } => {
            let user = UserId::parse(&user)?;
            let policy = settings.http.token_policy();
            println!("{}", token::issue_for(settings.http.jwt_secret(), &user, ttl_seconds, &policy)?);
        }
        Command::Provision { settings } => {
            telemetry::init(&settings.logs);
            let clients = environment_factory(&settings).build().await;
            let provisioned = provision(&clients, &settings.adapters.table, &settings.adapters.event_bus).await?;
            tracing::info!(queue = %provisioned.events_queue_url, "provisioned");
        }
        Command::LocalAws { env_file, mut settings } => {
            telemetry::init(&settings.logs);
            let (stack, _factory) = local_stack::start(&mut settings).await?;
            let devstack = stack.devstack().context("local-aws starts emulators of its own")?;
            local_stack::write_env_file(devstack, &settings, &env_file)
                .with_context(|| format!("writing {}", env_file.display()))?;
            tracing::info!(
                dynamodb = devstack.dynamodb_endpoint(),
                moto = devstack.moto_endpoint(),
                cache = settings.adapters.shared_cache.cache_url.as_deref(),
                env_file = %env_file.display(),
                "local AWS emulators and the shared cache are up; Ctrl-C stops them"
            );
            serve::shutdown_signal().await;
        }
        Command::Cleanup { once: _, settings } => {
            telemetry::init(&settings.logs);
            let adapters = Adapters::new(&settings, environment_factory(&settings).build().await);
            if let Some(queue) = &settings.workers.cleanup_queue_url {
                let drained = drain(&Worker::Cleanup(adapters.cleanup()), &adapters.clients.sqs, queue)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                println!("cleanup queue: {} handled, {} failed", drained.handled, drained.failed);
            }
            let swept = adapters.cleanup().sweep(settings.workers.cleanup_grace).await?;
            println!("deletion queue: {} purged, {} failed", swept.purged, swept.failed);
            adapters.events.flush().await;
        }
        Command::Serve { port, bind, metrics_addr, local_stack, workers, mut settings } => {
            telemetry::init(&settings.logs);
            let (stack, factory) = if local_stack {
                let (stack, factory) = local_stack::start(&mut settings).await?;
                (Some(stack), factory)
            } else {
                (None, environment_factory(&settings))
            };
            serve::serve(&settings, &factory, serve::Listeners { bind, port, metrics: metrics_addr }, workers).await?;
            drop(stack);
        }
    }
    Ok(())
}

fn environment_factory(settings: &Settings) -> ClientFactory {
    ClientFactory::new(SdkSource::Environment, EndpointOverrides::default())
        .with_network(settings.adapters.network.clone())
}
