use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    credbridge::cli::run(credbridge::cli::Cli::parse())
}
