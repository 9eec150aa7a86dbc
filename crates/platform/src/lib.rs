//! Plumbing shared by every Herald service, with no domain in it: configuration, storage,
//! the event bus, the outbox and inbox, the cache, auth tokens, HTTP serving, cursor paging
//! and telemetry.

pub mod auth;
pub mod bulk;
pub mod bus;
pub mod cache;
pub mod config;
pub mod cron;
pub mod db;
pub mod deadletters;
pub mod error;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod outbox;
pub mod paging;
pub mod service;
#[cfg(feature = "testing")]
pub mod smtp_sink;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;

pub use config::Settings;
pub use error::{ApiError, ApiResult, ErrorCode, RowProblem};
