//! The emulators in containers, started by `testcontainers` (the suite's container path,
//! `make test-containers`): Amazon's DynamoDB Local in one, LocalStack (EventBridge and
//! SQS) in the other. The images are named by configuration; the defaults are the ones
//! `scripts/containers.sh images` builds.
//!
//! Containers run on the host's network and bind 127.0.0.1 on free ports, as the plain
//! processes do: no port mapping, no bridge, no private-range address. They are removed
//! when the stack stops, and, because a test binary keeps its stack in a `static` that is
//! never dropped, by a reaper process when this process ends, however it ends.

use std::io::{self, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::Instant;

use brain2::adapters::aws::EndpointOverrides;
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::DevStackError;
use crate::emulators::{
    POLL_INTERVAL, STARTUP_TIMEOUT, Supervisor, answers_http, dynamodb_arguments, endpoint, free_ports,
};

/// The DynamoDB Local image: `amazon/dynamodb-local:<tag>` works as well.
pub const DYNAMODB_IMAGE_ENV: &str = "BRAIN2_DYNAMODB_IMAGE";
/// The LocalStack image: `localstack/localstack:<tag>` works as well.
pub const LOCALSTACK_IMAGE_ENV: &str = "BRAIN2_LOCALSTACK_IMAGE";
const DEFAULT_DYNAMODB_IMAGE: &str = "brain2/dynamodb-local:latest";
const DEFAULT_LOCALSTACK_IMAGE: &str = "brain2/localstack:2026.3.0";
/// Every container started here carries this label (with this process's id), so that
/// `scripts/containers.sh sweep` finds any that outlived their process.
pub const SUITE_LABEL: &str = "brain2.suite";
/// What LocalStack serves beside DynamoDB Local.
const LOCALSTACK_SERVICES: &str = "events,sqs";

const DYNAMODB_NAME: &str = "DynamoDB Local container";
const LOCALSTACK_NAME: &str = "LocalStack container";

/// Running emulator containers; removed by [`ContainerStack::stop`], on drop, or by the
/// reaper when this process exits.
#[derive(Debug)]
pub struct ContainerStack {
    dynamodb_endpoint: String,
    localstack_endpoint: String,
    supervisor: Option<Supervisor>,
}

impl ContainerStack {
    /// Starts both containers and blocks until both answer HTTP.
    pub fn start() -> Result<Self, DevStackError> {
        let images = [
            image_setting(DYNAMODB_IMAGE_ENV, DEFAULT_DYNAMODB_IMAGE),
            image_setting(LOCALSTACK_IMAGE_ENV, DEFAULT_LOCALSTACK_IMAGE),
        ];
        let [dynamodb_port, localstack_port] = free_ports()?;
        // One thread owns the containers and the runtime their client runs on, as the
        // process supervisor owns its children: the caller may be inside a runtime of its
        // own, where another could neither be started nor blocked on.
        let (supervisor, ()) = Supervisor::spawn("devstack-containers", move |ready, stop| {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return drop(ready.send(Err(DevStackError::Io(error)))),
            };
            let started = runtime.block_on(start_containers(&images, dynamodb_port, localstack_port));
            let containers = match started {
                Ok(containers) => containers,
                Err(error) => return drop(ready.send(Err(error))),
            };
            if let Err(error) = wait_ready(&runtime, &containers, [dynamodb_port, localstack_port]) {
                runtime.block_on(remove(containers));
                return drop(ready.send(Err(error)));
            }
            if ready.send(Ok(())).is_ok() {
                // Parks until `stop` asks (or the process ends: then the reaper acts).
                let _ = stop.recv();
            }
            runtime.block_on(remove(containers));
        })?;
        Ok(Self {
            dynamodb_endpoint: endpoint(dynamodb_port),
            localstack_endpoint: endpoint(localstack_port),
            supervisor: Some(supervisor),
        })
    }

    /// DynamoDB Local's container for DynamoDB, LocalStack's for EventBridge and SQS.
    pub fn endpoints(&self) -> EndpointOverrides {
        EndpointOverrides::emulators(&self.dynamodb_endpoint, &self.localstack_endpoint)
    }

    /// Removes both containers and waits until they are gone. Idempotent.
    pub fn stop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.stop();
        }
    }
}

impl Drop for ContainerStack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A configured image reference split into name and tag (`latest` when none is given).
fn image_setting(variable: &str, default: &str) -> (String, String) {
    let reference = std::env::var(variable).ok().filter(|value| !value.is_empty());
    let reference = reference.as_deref().unwrap_or(default);
    // A colon after the last slash separates the tag; one before it belongs to a registry's port.
    match reference.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
        Some((name, tag)) => (name.to_owned(), tag.to_owned()),
        None => (reference.to_owned(), "latest".to_owned()),
    }
}

struct Containers {
    dynamodb: ContainerAsync<GenericImage>,
    localstack: ContainerAsync<GenericImage>,
    reaper: Reaper,
}

async fn start_containers(
    [(dynamodb_image, dynamodb_tag), (localstack_image, localstack_tag)]: &[(String, String); 2],
    dynamodb_port: u16,
    localstack_port: u16,
) -> Result<Containers, DevStackError> {
    let mut reaper = Reaper::for_this_process()?;
    let label = std::process::id().to_string();
    // The working directory of the image holds the jar and its native libraries.
    let dynamodb = GenericImage::new(dynamodb_image, dynamodb_tag)
        .with_wait_for(WaitFor::Nothing)
        .with_network("host")
        .with_label(SUITE_LABEL, &label)
        .with_cmd(dynamodb_arguments("DynamoDBLocal.jar", "DynamoDBLocal_lib", dynamodb_port))
        .start();
    let localstack = GenericImage::new(localstack_image, localstack_tag)
        .with_wait_for(WaitFor::Nothing)
        .with_network("host")
        .with_label(SUITE_LABEL, &label)
        .with_env_var("GATEWAY_LISTEN", format!("127.0.0.1:{localstack_port}"))
        .with_env_var("SERVICES", LOCALSTACK_SERVICES)
        // Queue URLs that name the endpoint itself (by default they name a host under
        // localhost.localstack.cloud, which needs a resolver that knows it).
        .with_env_var("LOCALSTACK_HOST", format!("127.0.0.1:{localstack_port}"))
        .with_env_var("SQS_ENDPOINT_STRATEGY", "path")
        // Services load before the first request, so readiness means ready.
        .with_env_var("EAGER_SERVICE_LOADING", "1")
        .start();
    let (dynamodb, localstack) = tokio::join!(dynamodb, localstack);
    // Whichever started is in the reaper's hands before an error can return.
    for container in [&dynamodb, &localstack].into_iter().flatten() {
        reaper.watch(container.id())?;
    }
    let failed = |name| move |source| DevStackError::Container { name, source };
    Ok(Containers {
        dynamodb: dynamodb.map_err(failed(DYNAMODB_NAME))?,
        localstack: localstack.map_err(failed(LOCALSTACK_NAME))?,
        reaper,
    })
}

/// Polls both emulators until they answer, or reports the first that does not, with the
/// end of its output.
fn wait_ready(
    runtime: &tokio::runtime::Runtime,
    containers: &Containers,
    ports: [u16; 2],
) -> Result<(), DevStackError> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let named = [(DYNAMODB_NAME, &containers.dynamodb, ports[0]), (LOCALSTACK_NAME, &containers.localstack, ports[1])];
    for (name, container, port) in named {
        while !answers_http(port) {
            let running = runtime.block_on(container.is_running()).unwrap_or(false);
            if !running || Instant::now() >= deadline {
                let output = runtime.block_on(output_of(container));
                return Err(DevStackError::Timeout { name, port, timeout: STARTUP_TIMEOUT, output });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
    Ok(())
}

/// The last lines a container printed, for an error message.
async fn output_of(container: &ContainerAsync<GenericImage>) -> String {
    let mut output = container.stdout_to_vec().await.unwrap_or_default();
    output.extend(container.stderr_to_vec().await.unwrap_or_default());
    let text = String::from_utf8_lossy(&output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn remove(containers: Containers) {
    let (dynamodb, localstack) = tokio::join!(containers.dynamodb.rm(), containers.localstack.rm());
    for result in [dynamodb, localstack] {
        if let Err(error) = result {
            eprintln!("devstack: a container could not be removed (the reaper retries): {error}");
        }
    }
    containers.reaper.finish();
}

/// A `sh` child that reads container ids on its standard input and, once that input
/// closes, removes them with `docker rm -f`. Only this process holds the writing end,
/// so the input closes when the process ends, by `exit`, a panic or SIGKILL alike.
/// The reaper leads its own process group: a terminal's Ctrl-C does not reach it.
struct Reaper {
    child: Child,
    input: Option<ChildStdin>,
}

const REAPER_SCRIPT: &str = r#"ids=""
while read -r id; do ids="$ids $id"; done
[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
exit 0"#;

impl Reaper {
    fn for_this_process() -> io::Result<Self> {
        let mut command = Command::new("sh");
        command.args(["-c", REAPER_SCRIPT]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn()?;
        let input = child.stdin.take();
        Ok(Self { child, input })
    }

    fn watch(&mut self, container_id: &str) -> io::Result<()> {
        let input = self.input.as_mut().ok_or_else(|| io::Error::other("the reaper has no standard input"))?;
        writeln!(input, "{container_id}")?;
        input.flush()
    }

    /// Closes the reaper's input and waits until it has removed what it watched.
    fn finish(mut self) {
        drop(self.input.take());
        let _ = self.child.wait();
    }
}
