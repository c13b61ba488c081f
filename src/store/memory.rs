//! An in-memory user store, for tests, demos and services that load users from elsewhere.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::Utc;

use super::{UserRecord, UserStore};
use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::secret::PasswordHash;

/// Users in a `RwLock<BTreeMap>`. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: RwLock<BTreeMap<String, UserRecord>>,
}

impl MemoryUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut UserRecord) -> T,
    ) -> Result<T, StoreError> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let user = users.get_mut(name).ok_or_else(|| {
            StoreError::new(StoreErrorKind::NotFound, format!("no user named `{name}`"))
        })?;
        Ok(change(user))
    }
}

impl UserStore for MemoryUserStore {
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        // A poisoned lock only means another thread panicked mid-read or mid-write of a whole
        // record; the map itself is still consistent.
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let found = users.get(name).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let result = if users.contains_key(&user.name) {
            Err(StoreError::new(
                StoreErrorKind::Conflict,
                format!("user `{}` already exists", user.name),
            ))
        } else {
            users.insert(user.name.clone(), user);
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn set_password_hash<'a>(
        &'a self,
        name: &'a str,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = self.update(name, |user| {
            user.password_hash = hash;
            user.updated_at = Utc::now();
        });
        Box::pin(async move { result })
    }

    fn replace_password_hash<'a>(
        &'a self,
        name: &'a str,
        expected: &'a PasswordHash,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let result = self.update(name, |user| {
            let current = user.password_hash.ct_eq(expected);
            if current {
                user.password_hash = hash;
            }
            current
        });
        Box::pin(async move { result })
    }

    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = self.update(name, |user| {
            user.disabled = disabled;
            user.updated_at = Utc::now();
        });
        Box::pin(async move { result })
    }

    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let all = users.values().cloned().collect();
        Box::pin(async move { Ok(all) })
    }
}
