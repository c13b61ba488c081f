//! [`Seed`]: memory stores with users and API keys, in one call.

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "api-key")]
use crate::api_key::{IssuedKey, manager::ApiKeys, new_key::NewApiKey};
#[cfg(feature = "basic")]
use crate::basic::authenticator::BasicAuthenticator;
use crate::error::ConfigError;
#[cfg(feature = "basic")]
use crate::secret::SecretString;
#[cfg(feature = "api-key")]
use crate::store::MemoryApiKeyStore;
use crate::store::MemoryUserStore;

/// How long a seeded API key lives when its [`NewApiKey`] names no lifetime: 1 hour.
#[cfg(feature = "api-key")]
pub const DEFAULT_KEY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// Users and API keys to put in memory stores:
/// `Seed::new().user(..).api_key(..).build().await?` is one call that returns the stores, the
/// authenticators over them and the API keys in plaintext, so a test can send them. Passwords
/// are hashed with [`INSECURE_FAST_HASHING`](super::INSECURE_FAST_HASHING).
///
/// ```
/// use portcullis::NewApiKey;
/// use portcullis::testing::Seed;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let seeded = Seed::new()
///     .user("alice", "correct horse", ["admin"])
///     .api_key(NewApiKey::application("reporter").with_scopes(["reports:read"]))
///     .build()
///     .await?;
/// let key: &str = seeded.key(0).key().expose_secret();
/// assert!(key.starts_with("pc_"));
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
#[must_use]
pub struct Seed {
    #[cfg(feature = "basic")]
    users: Vec<(String, SecretString, Vec<String>)>,
    #[cfg(feature = "api-key")]
    keys: Vec<NewApiKey>,
}

impl Seed {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A user `name` with `password`, in `groups`.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub fn user<I, S>(mut self, name: &str, password: &str, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.users.push((
            name.to_owned(),
            SecretString::new(password),
            groups.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// An API key; it lives [`DEFAULT_KEY_LIFETIME`] unless `key` says otherwise.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn api_key(mut self, key: NewApiKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Creates the stores, then every user and key, in order.
    pub async fn build(self) -> Result<Seeded, ConfigError> {
        let users = Arc::new(MemoryUserStore::new());
        #[cfg(feature = "basic")]
        let basic = {
            let basic = Arc::new(
                BasicAuthenticator::builder(Arc::clone(&users) as _)
                    .realm("test")
                    .hashing(super::INSECURE_FAST_HASHING)
                    .build()?,
            );
            for (name, password, groups) in self.users {
                basic
                    .add_user(&name, &password, groups)
                    .await
                    .map_err(|e| ConfigError::new(format!("seed user `{name}`: {e}")))?;
            }
            basic
        };
        #[cfg(feature = "api-key")]
        let (key_store, api_keys, issued) =
            {
                let key_store = Arc::new(MemoryApiKeyStore::new());
                let api_keys =
                    ApiKeys::builder(Arc::clone(&key_store) as _, random_pepper()).build()?;
                let mut issued = Vec::with_capacity(self.keys.len());
                for mut key in self.keys {
                    key.expires_in = key.expires_in.or(Some(DEFAULT_KEY_LIFETIME));
                    let owner = key.owner.clone();
                    issued.push(api_keys.create(key).await.map_err(|e| {
                        ConfigError::new(format!("seed API key for `{owner}`: {e}"))
                    })?);
                }
                (key_store, api_keys, issued)
            };
        Ok(Seeded {
            users,
            #[cfg(feature = "basic")]
            basic,
            #[cfg(feature = "api-key")]
            key_store,
            #[cfg(feature = "api-key")]
            api_keys,
            #[cfg(feature = "api-key")]
            issued,
        })
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Seed");
        #[cfg(feature = "basic")]
        debug.field(
            "users",
            &self.users.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
        );
        #[cfg(feature = "api-key")]
        debug.field("keys", &self.keys);
        debug.finish()
    }
}

/// What [`Seed::build`] made: the stores, the authenticators over them, the keys issued.
pub struct Seeded {
    users: Arc<MemoryUserStore>,
    #[cfg(feature = "basic")]
    basic: Arc<BasicAuthenticator>,
    #[cfg(feature = "api-key")]
    key_store: Arc<MemoryApiKeyStore>,
    #[cfg(feature = "api-key")]
    api_keys: ApiKeys,
    #[cfg(feature = "api-key")]
    issued: Vec<IssuedKey>,
}

impl Seeded {
    /// The user store.
    pub fn users(&self) -> &Arc<MemoryUserStore> {
        &self.users
    }

    /// A Basic authenticator (realm `test`) over the users, hashing with
    /// [`INSECURE_FAST_HASHING`](super::INSECURE_FAST_HASHING): add it to a Gate with
    /// `shared_authenticator`.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub fn basic(&self) -> Arc<BasicAuthenticator> {
        Arc::clone(&self.basic)
    }

    /// The API key store.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn key_store(&self) -> &Arc<MemoryApiKeyStore> {
        &self.key_store
    }

    /// The key manager over the key store (a random pepper): its
    /// [`authenticator`](ApiKeys::authenticator) checks the seeded keys.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn api_keys(&self) -> &ApiKeys {
        &self.api_keys
    }

    /// The keys issued, in the order given, each with its plaintext
    /// ([`IssuedKey::key`]) and record.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn keys(&self) -> &[IssuedKey] {
        &self.issued
    }

    /// Key number `index` (from 0, in the order given).
    ///
    /// # Panics
    ///
    /// When fewer keys were seeded: a mistake in the test.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn key(&self, index: usize) -> &IssuedKey {
        &self.issued[index]
    }
}

impl fmt::Debug for Seeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seeded").finish_non_exhaustive()
    }
}

/// A pepper for this seed alone, at the minimum length.
#[cfg(feature = "api-key")]
fn random_pepper() -> crate::secret::SecretString {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    crate::secret::SecretString::new(base64::engine::general_purpose::STANDARD.encode(bytes))
}
