//! The HTTP surface: the credential contract, the health probes, and their errors.

mod client;
mod credentials;
mod error;
mod extract;
mod health;
mod metrics;
mod observe;
pub mod openapi;
mod readiness;
mod request_id;
mod router;
mod routes;
mod state;

pub use client::{ClientAddr, ClientAddresses};
pub use error::{ApiError, ErrorCode};
pub use readiness::SharedCheck;
pub use router::router;
pub use routes::Routes;
pub use state::{AppState, AppStateInner};
