//! Plumbing shared by every Herald service, with no domain in it: configuration, storage,
//! the event bus, the outbox and inbox, the cache, auth tokens, HTTP serving and telemetry.

pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod outbox;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::Settings;
pub use error::{ApiError, ApiResult, ErrorCode};
