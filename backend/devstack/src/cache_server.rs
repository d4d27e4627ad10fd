//! A throwaway redis-server, the shared cache tier of `brain2 serve --local-stack`,
//! `brain2 local-aws` and the integration suite (ElastiCache for Valkey in AWS).
//!
//! It is Debian's redis-server, unpacked into `.local/redis/` by `make tools`, run as a
//! plain child process on a free loopback port whichever way the AWS emulators run. It
//! keeps everything in memory: a restart starts empty, as a cache node that was replaced
//! does. Its child process is owned by a [`Supervisor`] thread, for the reasons the
//! emulators' is (see [`crate::emulators`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::DevStackError;
use crate::emulators::{
    Emulator, Supervisor, answers, assert_send_sync, free_ports, retrying_port_conflicts, supervise, wait_ready,
};

/// Overrides the `redis-server` executable found under `.local/`. Its libraries are looked
/// for beside it, where Debian's packages put them (`../lib/<arch>-linux-gnu`).
pub const REDIS_SERVER_ENV: &str = "BRAIN2_REDIS_SERVER";

const NAME: &str = "redis-server";

/// A running redis-server (or one killed, to be restarted on its port). Killed by
/// [`CacheServer::kill`], on drop, or by the kernel when this process exits.
#[derive(Debug)]
pub struct CacheServer {
    program: PathBuf,
    libraries: PathBuf,
    port: u16,
    supervisor: Option<Supervisor>,
}

const _: () = assert_send_sync::<CacheServer>();

impl CacheServer {
    /// Starts redis-server from `<root>/.local/redis` (or env BRAIN2_REDIS_SERVER pointing
    /// at the binary, with its libraries found next to it as installed) on a free loopback
    /// port; blocks until it answers PING.
    pub fn start(root: &Path) -> Result<Self, DevStackError> {
        let program = find_redis_server(root, std::env::var_os(REDIS_SERVER_ENV).filter(|value| !value.is_empty()))?;
        let libraries = libraries_beside(&program);
        retrying_port_conflicts(|| {
            let [port] = free_ports()?;
            let mut server = Self { program: program.clone(), libraries: libraries.clone(), port, supervisor: None };
            server.restart()?;
            Ok(server)
        })
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit. Idempotent.
    pub fn kill(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.stop();
        }
    }

    /// Starts it again on the same port, empty (no persistence); blocks until it answers
    /// PING. A running server is killed first.
    pub fn restart(&mut self) -> Result<(), DevStackError> {
        self.kill();
        let command = self.command();
        let port = self.port;
        let (supervisor, ()) = Supervisor::spawn("devstack-cache", move |ready, stop| {
            supervise(ready, stop, |servers| {
                servers.push(Emulator::spawn(NAME, command, port, answers_ping)?);
                wait_ready(servers)
            })
        })?;
        self.supervisor = Some(supervisor);
        Ok(())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            // Nothing on disk: no snapshots, no append-only file, and a working directory
            // outside the repository should anything be written all the same.
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir())
            // Bound to loopback, so there is no one to protect it from; protected mode
            // would refuse clients only if it were reachable from elsewhere.
            .args(["--protected-mode", "no"])
            .env("LD_LIBRARY_PATH", self.library_path());
        command
    }

    /// The unpacked packages' libraries (liblzf, jemalloc) first, then whatever the
    /// environment already searches.
    fn library_path(&self) -> OsString {
        let inherited = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
        let paths = std::iter::once(self.libraries.clone()).chain(std::env::split_paths(&inherited));
        std::env::join_paths(paths).unwrap_or_else(|_| self.libraries.clone().into_os_string())
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// redis answers RESP, not HTTP: an inline PING gets `+PONG` once it serves commands.
fn answers_ping(port: u16) -> bool {
    answers(port, b"PING\r\n", b"+PONG")
}

/// The executable `configured` names, else the one `make tools` unpacked under `root`.
fn find_redis_server(root: &Path, configured: Option<OsString>) -> Result<PathBuf, DevStackError> {
    let program = configured.map(PathBuf::from).unwrap_or_else(|| root.join(".local/redis/root/usr/bin/redis-server"));
    if !program.is_file() {
        return Err(DevStackError::ToolNotFound { what: "redis-server", path: program, env_var: REDIS_SERVER_ENV });
    }
    // Absolute but not canonical: Debian's redis-server is a symlink to redis-check-rdb,
    // and the binary chooses what it is by the name it was started under.
    Ok(std::path::absolute(program)?)
}

/// Where Debian's packages put the libraries of `<prefix>/bin/redis-server`.
fn libraries_beside(program: &Path) -> PathBuf {
    let prefix = program.parent().and_then(Path::parent).unwrap_or_else(|| Path::new("/"));
    prefix.join("lib").join(format!("{}-linux-gnu", std::env::consts::ARCH))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpStream};
    use std::time::Duration;

    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Sends one inline command and returns the first line of the reply.
    fn send(port: u16, line: &str) -> String {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("redis-server accepts");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).expect("a whole reply line");
            reply.push(byte[0]);
        }
        String::from_utf8_lossy(&reply).trim_end().to_owned()
    }

    #[test]
    fn starts_dies_like_a_crash_and_restarts_empty_on_the_same_port() {
        let mut server = CacheServer::start(&root()).expect("redis-server installed (run `make tools`)");
        let port = server.port();
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
        assert_eq!(send(port, "PING"), "+PONG");
        assert_eq!(send(port, "SET planted entry"), "+OK");

        server.kill();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "connections are refused once killed");
        server.kill();

        server.restart().expect("redis-server starts again");
        assert_eq!(server.port(), port);
        assert_eq!(send(port, "PING"), "+PONG");
        assert_eq!(send(port, "GET planted"), "$-1", "a restarted server is empty");
    }

    #[test]
    fn a_missing_binary_names_where_it_was_looked_for_and_how_to_install_it() {
        let empty = std::env::temp_dir().join(format!("brain2-no-tools-{}", std::process::id()));
        let error = find_redis_server(&empty, None).expect_err("nothing is installed there");
        let message = error.to_string();
        assert!(message.contains(".local/redis/root/usr/bin/redis-server"), "{message}");
        assert!(message.contains("make tools") && message.contains(REDIS_SERVER_ENV), "{message}");
    }

    #[test]
    fn the_libraries_are_looked_for_where_the_packages_put_them() {
        let libraries = libraries_beside(Path::new("/opt/redis/root/usr/bin/redis-server"));
        assert_eq!(
            libraries,
            Path::new("/opt/redis/root/usr/lib").join(format!("{}-linux-gnu", std::env::consts::ARCH))
        );
    }
}
