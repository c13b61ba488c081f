//! Framework adapters: translation only; every decision is the Gate's.

#[cfg(feature = "actix")]
pub(crate) mod actix;
#[cfg(feature = "axum")]
pub(crate) mod axum;
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) mod extract;
#[cfg(feature = "tower")]
pub(crate) mod tower;
