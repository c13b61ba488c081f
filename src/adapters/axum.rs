//! axum extractors: [`Principal`], `Option<Principal>`, [`Guard`] and [`Claims`], each reading the
//! [`GateContext`] the [`GateLayer`](crate::GateLayer) put in the request's extensions. Refusals
//! ([`Refusal`]) are built by the Gate's responder.
//!
//! `Principal` as an argument requires an authenticated request (else 401 with every challenge,
//! which only happens on a route whose rule lets anonymous callers in); `Option<Principal>` suits
//! routes that anonymous callers may also use. Without a Gate in front, every one of them refuses
//! with 500.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::extract::{Claims, Guard};
use super::tower::{client_uri, peer_addr};
use crate::context::{GateContext, HANDLER, no_context};
use crate::principal::Principal;
use crate::reject::Refusal;
use crate::request::RequestView;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        http::Response::<String>::from(self).into_response()
    }
}

/// The request as the Gate saw it: the path the client sent, even under `nest`.
fn view(parts: &Parts) -> RequestView<'_> {
    let uri = client_uri(&parts.extensions).unwrap_or(&parts.uri);
    RequestView::new(&parts.method, uri, &parts.headers).with_peer(peer_addr(&parts.extensions))
}

/// The Gate's context, or the 500 refusal when no Gate ran in front.
fn context<'a>(parts: &'a Parts, what: &str) -> Result<&'a GateContext, Refusal> {
    parts
        .extensions
        .get::<GateContext>()
        .ok_or_else(|| no_context(&view(parts), HANDLER, what))
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        context(parts, "the Principal extractor")?
            .principal_or_refuse(&view(parts))
            .cloned()
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(context(parts, "the Option<Principal> extractor")?
            .principal()
            .cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Guard {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let context = context(parts, "the Guard extractor")?.clone();
        let uri = client_uri(&parts.extensions).unwrap_or(&parts.uri).clone();
        Ok(Guard::new(
            context,
            parts.method.clone(),
            uri,
            parts.headers.clone(),
            peer_addr(&parts.extensions),
        ))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Claims<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        context(parts, "the Claims extractor")?
            .claims(&view(parts))
            .map(Claims)
    }
}
