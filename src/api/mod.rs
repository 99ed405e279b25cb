//! The HTTP surface: the credential contract, the health probes, and their errors.

mod client;
mod credentials;
mod error;
mod extract;
mod health;
mod metrics;
mod observe;
pub mod openapi;
mod request_id;
mod router;
mod state;

pub use client::{ClientAddr, ClientAddresses};
pub use error::ApiError;
pub use health::SharedCheck;
pub use router::{route_templates, router};
pub use state::{AppState, AppStateInner};
