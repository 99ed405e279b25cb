//! `credbridge doctor`: checks a deployment end to end, one line per check, each failure
//! with what to do about it.

mod backend;
mod clock;
mod diagnose;
mod report;
mod skyvern;
mod tls;

pub use backend::error_chain;
pub use diagnose::{diagnose, Options, PROBE_TOOL};
pub use report::{Check, Report, Status};
pub use skyvern::{blocked_ip, blocked_name};
