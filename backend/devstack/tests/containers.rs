//! The emulator containers' life cycle. These tests need a Docker engine and the images of
//! `scripts/containers.sh images`: `make test-containers` runs them (`--ignored`); `make
//! test`, which has no engine, lists them as ignored.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brain2_devstack::ContainerStack;
use brain2_devstack::containers::SUITE_LABEL;

/// Set in the child process of the kill test: it holds containers until it is killed.
const HOLDER_ENV: &str = "BRAIN2_TEST_HOLD_CONTAINERS";
const HOLDING: &str = "holding containers";

/// The ids of the containers labelled with this process id.
fn containers_of(pid: u32) -> Vec<String> {
    let output = Command::new("docker")
        .args(["ps", "--all", "--quiet", "--filter", &format!("label={SUITE_LABEL}={pid}")])
        .output()
        .expect("the docker CLI runs");
    assert!(output.status.success(), "docker ps: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect()
}

/// Polls until no container of `pid` is listed, or the deadline passes (a generous one:
/// removing a JVM's container on a busy machine takes seconds; only an absence is asserted).
fn wait_until_none_of(pid: u32) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = containers_of(pid);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
#[ignore = "needs a container engine: make test-containers runs it"]
fn stopping_the_stack_removes_both_containers() {
    let mut stack = ContainerStack::start().expect("the containers start");
    assert_eq!(containers_of(std::process::id()).len(), 2, "DynamoDB Local and LocalStack run");
    stack.stop();
    assert_eq!(containers_of(std::process::id()), Vec::<String>::new(), "stop returns once both are removed");
}

#[test]
#[ignore = "needs a container engine: make test-containers runs it"]
fn containers_are_removed_when_the_process_that_started_them_is_killed() {
    if std::env::var_os(HOLDER_ENV).is_some() {
        // The child's part: start the containers, say so, and wait for SIGKILL.
        let _stack = ContainerStack::start().expect("the containers start");
        println!("{HOLDING}");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let test_name = "containers_are_removed_when_the_process_that_started_them_is_killed";
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--ignored", "--nocapture"])
        .env(HOLDER_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the holder starts");
    let stdout = BufReader::new(holder.stdout.take().unwrap());
    let held = stdout.lines().map_while(Result::ok).any(|line| line.contains(HOLDING));
    assert!(held, "the holder started its containers");
    let pid = holder.id();
    assert_eq!(containers_of(pid).len(), 2, "the holder's two containers run");

    holder.kill().expect("SIGKILL reaches the holder");
    holder.wait().unwrap();
    assert_eq!(wait_until_none_of(pid), Vec::<String>::new(), "the reaper removed the killed holder's containers");
}
