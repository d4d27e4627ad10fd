//! The server of one profile: `brain2 serve` (`--workers`) as a process of its own on the run's
//! emulators and the profile's table, with the cost headers on, the simulated network, and
//! its Prometheus listener on loopback.

use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brain2_devstack::tie_to_this_process;

use crate::config::{HarnessConfig, ProfileSpec};

/// The emulators already run; this covers a busy two-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// A graceful stop flushes the events still queued, to emulators about to be thrown away;
/// after a bulk-heavy profile that took up to a minute against moto, which measures nothing.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LocalServer {
    child: Option<Child>,
    pub base_url: String,
    pub metrics_url: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalServer {
    /// Starts the server with `environment` (where AWS is, the table, bus and queues), with
    /// the in-process workers or without (an API instance only, as a Lambda function is), and
    /// waits until its health check answers `up`.
    pub async fn start(
        brain2: &Path,
        environment: &[(String, String)],
        profile: &ProfileSpec,
        config: &HarnessConfig,
        jwt_secret: &str,
        log: &Path,
        workers: bool,
    ) -> anyhow::Result<Self> {
        let (port, metrics_port) = (free_port()?, free_port()?);
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(brain2);
        // A harness killed half-way takes the server along.
        tie_to_this_process(&mut command);
        let child = command
            .args(["serve", "--port", &port.to_string()])
            .args(workers.then_some("--workers"))
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .envs(environment.iter().cloned())
            .envs(profile.environment())
            .env("BRAIN2_SIM_RTT_MS", config.sim_rtt_ms.to_string())
            .env("BRAIN2_SIM_CACHE_RTT_MS", config.sim_cache_rtt_ms.to_string())
            .env("BRAIN2_EXPOSE_COSTS", "on")
            // The harness measures throughput: many simulated users act as one user, whom
            // the per-user rate limit would otherwise hold back.
            .env("BRAIN2_RATE_LIMIT_PER_SECOND", "0")
            .env("BRAIN2_JWT_SECRET", jwt_secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", brain2.display()))?;
        let mut server = Self {
            child: Some(child),
            base_url: format!("http://127.0.0.1:{port}/api/v1"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
        };
        server.wait_until_up(log).await?;
        Ok(server)
    }

    async fn wait_until_up(&mut self, log: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(format!("{}/health", self.base_url)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("brain2 serve exited during start-up ({status}); see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("brain2 serve did not answer within {START_TIMEOUT:?}; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM, as in production: queued events are flushed.
    /// A server still busy after [`STOP_TIMEOUT`] is killed: the measurements are taken by
    /// then, so that is reported, not fatal.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let pid = libc::pid_t::try_from(child.id())?;
        // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child's.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                crate::run::progress(format_args!(
                    "brain2 serve was still stopping after {STOP_TIMEOUT:?} and was killed"
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for LocalServer {
    /// A run that fails half-way still leaves no process behind.
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
