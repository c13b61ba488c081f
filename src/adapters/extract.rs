//! What handlers take besides [`Principal`](crate::Principal): a [`Guard`] to demand a policy,
//! and [`Claims`] for typed token claims. Framework-free types; `axum.rs` and `actix.rs` make
//! them extractors.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

use http::{HeaderMap, Method, Uri};

use crate::context::GateContext;
use crate::policy::Policy;
use crate::principal::Principal;
use crate::reject::Refusal;
use crate::request::RequestView;

/// A handler guard: demands a [`Policy`] inside a handler and refuses exactly as the Gate does,
/// with the Gate's responder. An extractor in axum and actix-web:
///
/// ```
/// use portcullis::Groups;
/// use portcullis::extract::Guard;
/// use portcullis::reject::Refusal;
///
/// async fn delete_user(guard: Guard) -> Result<&'static str, Refusal> {
///     guard.require(&Groups::any_of(["admin"]))?;
///     Ok("deleted")
/// }
/// ```
///
/// It judges the principal the Gate already established (nothing authenticates twice), on the
/// request the handler runs for. Without a Gate in front, extracting it refuses with 500.
#[derive(Clone, Debug)]
pub struct Guard {
    context: GateContext,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
}

impl Guard {
    pub(crate) fn new(
        context: GateContext,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self {
            context,
            method,
            uri,
            headers,
            peer,
        }
    }

    /// Allows the request, or refuses it as the Gate would (401 with every challenge for an
    /// anonymous caller, 403 for a principal, Bearer `insufficient_scope` for missing scopes),
    /// through the Gate's responder, with one audit event (`stage = "handler"`). See
    /// [`GateContext::require`].
    pub fn require(&self, policy: &dyn Policy) -> Result<(), Refusal> {
        self.context.require(policy, &self.view())
    }

    /// The authenticated caller, or `None` for an anonymous one.
    pub fn principal(&self) -> Option<&Principal> {
        self.context.principal()
    }

    /// What the Gate established about the request.
    pub fn context(&self) -> &GateContext {
        &self.context
    }

    fn view(&self) -> RequestView<'_> {
        RequestView::new(&self.method, &self.uri, &self.headers).with_peer(self.peer)
    }
}

/// A token's verified claims, deserialized into `T`: an extractor in axum and actix-web.
///
/// ```
/// use portcullis::extract::Claims;
///
/// #[derive(serde::Deserialize)]
/// struct Tenant {
///     tenant_id: String,
/// }
///
/// async fn tenant(Claims(tenant): Claims<Tenant>) -> String {
///     tenant.tenant_id
/// }
/// ```
///
/// Refusals go through the Gate's responder: 401 with every challenge for an anonymous caller;
/// 403 for a principal whose credential has no token claims (Basic, API key); 401
/// `invalid_token` (the Bearer challenge's error) for claims that do not deserialize into `T`.
/// serde's message, which may quote claim values, goes to the audit event only. Without a Gate
/// in front, 500. [`Principal::claims_as`] does the same outside a handler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Claims<T>(pub T);

impl<T> Deref for Claims<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Claims<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
