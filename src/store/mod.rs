//! Credential stores. They hold only hashes (argon2id PHC strings for passwords), never a secret.
//!
//! Every method is async and fallible: a store that cannot answer gives a
//! [`StoreError`] of kind `Unavailable`, which requests see as 503, never as a 401.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::authenticator::BoxFuture;
use crate::error::StoreError;
use crate::principal::SubjectKind;
use crate::secret::PasswordHash;

mod api_keys;
mod memory;

pub use api_keys::{ApiKeyRecord, ApiKeyStore, KeyDigest, MemoryApiKeyStore};
pub use memory::MemoryUserStore;

/// A user (or application) that can log in with a password.
#[derive(Clone, Debug)]
pub struct UserRecord {
    /// The login name.
    pub name: String,
    /// The argon2id PHC string of the password.
    pub password_hash: PasswordHash,
    /// A person or an application.
    pub kind: SubjectKind,
    /// Groups (roles) for authorization.
    pub groups: Vec<String>,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the password or the disabled flag last changed.
    pub updated_at: DateTime<Utc>,
}

impl UserRecord {
    /// A new, enabled user created now.
    pub fn new(name: impl Into<String>, password_hash: PasswordHash) -> Self {
        let now = Utc::now();
        Self {
            name: name.into(),
            password_hash,
            kind: SubjectKind::User,
            groups: Vec::new(),
            disabled: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// Sets the groups.
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the kind.
    pub fn with_kind(mut self, kind: SubjectKind) -> Self {
        self.kind = kind;
        self
    }
}

/// Where users and their password hashes live.
pub trait UserStore: fmt::Debug + Send + Sync + 'static {
    /// The user named `name`, if any.
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>>;

    /// Adds a user; `Conflict` if the name is taken. Durable when it returns.
    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Sets a user's password hash; `NotFound` if there is no such user.
    fn set_password_hash<'a>(
        &'a self,
        name: &'a str,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Replaces the hash only if it is still `expected` (used to upgrade a hash after login
    /// without overwriting a password changed meanwhile). Returns whether it replaced it.
    fn replace_password_hash<'a>(
        &'a self,
        name: &'a str,
        expected: &'a PasswordHash,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Enables or disables a user; `NotFound` if there is no such user.
    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every user, by name.
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>>;
}
