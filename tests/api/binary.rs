//! The `credbridge` binary as the tests that run it share it: a command with a clean
//! environment, what a finished run printed, and free ports for it to serve on.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_credbridge");

/// The binary with a clean `CREDBRIDGE_*` and `VAULT_*` environment (the AWS test
/// credentials `tests/run` exports stay), run from `dir`, whose configuration file, if any,
/// is the one it reads by default.
pub fn credbridge(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CREDBRIDGE_") || key.starts_with("VAULT_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

/// What a finished command printed (the operator tests add what they read from it, in
/// `operator/support.rs`).
pub struct Ran {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn from_output(output: Output) -> Self {
        Self {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }
}

/// Runs `command` to its end with nothing on standard input.
pub fn run(command: &mut Command) -> Ran {
    Ran::from_output(command.stdin(Stdio::null()).output().unwrap())
}

/// A loopback port nothing listens on now: for a server to take, or to be refused on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
