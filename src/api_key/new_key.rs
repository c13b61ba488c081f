//! [`NewApiKey`]: what to create.

use std::time::Duration;

use super::{ApiKeyError, MAX_FIELD_LEN, MAX_LIST_LEN};
use crate::principal::SubjectKind;

/// What to create: the input of [`ApiKeys::create`](crate::ApiKeys::create).
///
/// Build it with [`NewApiKey::new`] (or [`NewApiKey::application`]) and the `with_*` methods.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct NewApiKey {
    /// Who the key acts as: a user name or an application id. Required.
    pub owner: String,
    /// Whether the owner is a user or an application (machine-to-machine).
    pub owner_kind: SubjectKind,
    /// A label for people (`"ci deploy"`).
    pub name: String,
    /// Scopes the key grants.
    pub scopes: Vec<String>,
    /// Groups the key's principal is in.
    pub groups: Vec<String>,
    /// How long the key lives. Required unless non-expiring keys are allowed; at most the
    /// configured maximum lifetime.
    pub expires_in: Option<Duration>,
    /// Who is creating it (an operator's name, a service), for the record.
    pub created_by: Option<String>,
}

impl NewApiKey {
    /// A key for user `owner`, with no name, scopes, groups or expiry yet.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            ..Self::default()
        }
    }

    /// A key for application `owner` (machine-to-machine).
    pub fn application(owner: impl Into<String>) -> Self {
        Self::new(owner).with_owner_kind(SubjectKind::Application)
    }

    /// Sets whether the owner is a user or an application.
    pub fn with_owner_kind(mut self, kind: SubjectKind) -> Self {
        self.owner_kind = kind;
        self
    }

    /// Sets the label.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the scopes.
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the groups.
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how long the key lives.
    pub fn with_expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// Sets who is creating it.
    pub fn with_created_by(mut self, who: impl Into<String>) -> Self {
        self.created_by = Some(who.into());
        self
    }

    pub(super) fn validate(&self) -> Result<(), ApiKeyError> {
        let field = |what: &str, value: &str, required: bool| {
            if required && value.is_empty() {
                return Err(ApiKeyError::Invalid(format!("the {what} is empty")));
            }
            if value.len() > MAX_FIELD_LEN {
                return Err(ApiKeyError::Invalid(format!(
                    "the {what} is longer than {MAX_FIELD_LEN} bytes"
                )));
            }
            if value.chars().any(char::is_control) {
                return Err(ApiKeyError::Invalid(format!(
                    "the {what} contains a control character"
                )));
            }
            Ok(())
        };
        field("owner", &self.owner, true)?;
        field("name", &self.name, false)?;
        if let Some(who) = &self.created_by {
            field("creator", who, false)?;
        }
        for (what, list) in [("scope", &self.scopes), ("group", &self.groups)] {
            if list.len() > MAX_LIST_LEN {
                return Err(ApiKeyError::Invalid(format!(
                    "more than {MAX_LIST_LEN} {what}s"
                )));
            }
            for item in list {
                field(what, item, true)?;
                if item.contains(' ') {
                    return Err(ApiKeyError::Invalid(format!(
                        "the {what} `{item}` has a space"
                    )));
                }
            }
        }
        Ok(())
    }
}
