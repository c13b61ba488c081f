//! [`BoxFuture`]: what the crate's trait objects (authenticators, stores, failure counters, HTTP
//! clients) return from async methods. A basic of its own so that a store does not import the
//! authenticator trait for an alias.

use std::future::Future;
use std::pin::Pin;

/// A boxed, `Send` future: what trait objects in this crate return from async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
