//! [`BasicAuthenticator`]: the order of work is in the module docs of [`crate::basic`].

use std::sync::Arc;
use std::time::Duration;

use http::header::AUTHORIZATION;

use super::cache::VerifiedCache;
use super::header::{BasicCredentials, BasicLimits, parse_basic};
use super::turns::Turns;
use super::{HashError, HashingConfig, HashingPool, Verification};
use crate::authenticator::{ApiKeyVerifier, Authenticator, CredentialSource, Outcome};
use crate::error::{ConfigError, StoreError};
use crate::future::BoxFuture;
use crate::health::{self, ComponentStatus};
use crate::lockout::{AttemptEnd, Lockout};
use crate::principal::{Principal, Scheme};
use crate::reject::{Challenge, Rejection};
use crate::request::RequestView;
use crate::secret::{PasswordHash, SecretString};
use crate::store::{UserRecord, UserStore};

/// Authenticates `Authorization: Basic` against a [`UserStore`].
#[derive(Debug)]
pub struct BasicAuthenticator {
    realm: String,
    store: Arc<dyn UserStore>,
    pool: HashingPool,
    lockout: Option<Lockout>,
    cache: Option<VerifiedCache>,
    turns: Turns,
    limits: BasicLimits,
    /// Checks key-shaped passwords as API keys ([`BasicAuthenticatorBuilder::accept_api_keys`]).
    api_keys: Option<Arc<dyn ApiKeyVerifier>>,
}

impl BasicAuthenticator {
    /// Starts building an authenticator over `store`.
    pub fn builder(store: Arc<dyn UserStore>) -> BasicAuthenticatorBuilder {
        BasicAuthenticatorBuilder {
            realm: "api".to_owned(),
            store,
            hashing: HashingConfig::default(),
            pool: None,
            lockout: Some(Lockout::default()),
            cache: None,
            limits: BasicLimits::default(),
            api_keys: None,
        }
    }

    /// The hashing pool, to hash passwords for new users with the same cost.
    pub fn hashing_pool(&self) -> &HashingPool {
        &self.pool
    }

    /// The user store.
    pub fn store(&self) -> &Arc<dyn UserStore> {
        &self.store
    }

    /// Hashes `password` and creates an enabled user in `groups`; the common way to add one.
    pub async fn add_user(
        &self,
        name: &str,
        password: &SecretString,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<(), AddUserError> {
        let hash = self.pool.hash(password).await?;
        let user = UserRecord::new(name, hash).with_groups(groups);
        self.store.create_user(user).await?;
        Ok(())
    }

    async fn check(&self, request: &RequestView<'_>) -> Outcome {
        let header = match request.single_header(AUTHORIZATION) {
            Ok(Some(header)) => header,
            Ok(None) => return Outcome::Abstain,
            Err(rejection) => return Outcome::Rejected(rejection.for_scheme(Scheme::BASIC)),
        };
        let credentials = match parse_basic(header, &self.limits) {
            Ok(Some(credentials)) => credentials,
            Ok(None) => return Outcome::Abstain,
            Err(reason) => {
                return Outcome::Rejected(
                    Rejection::invalid_request(reason).for_scheme(Scheme::BASIC),
                );
            }
        };
        if let Some(keys) = &self.api_keys
            && keys.is_key(credentials.password.expose_secret())
        {
            return self.check_key(keys.as_ref(), &credentials).await;
        }
        match self.verify(&credentials, request).await {
            Ok(outcome) => outcome,
            Err(rejection) => Outcome::Rejected(rejection.for_scheme(Scheme::BASIC)),
        }
    }

    /// A key sent as the password (issue #20): checked as that key and nothing else. No lockout
    /// counter is read or counted (a 256-bit key cannot be guessed, and bad tokens must not lock
    /// the owner's password out), no user is looked up before the key verifies (its time says
    /// nothing about which users exist), and no argon2 runs. The principal and a refusal are the
    /// key scheme's, so policies and the audit trail see an API key.
    async fn check_key(
        &self,
        keys: &dyn ApiKeyVerifier,
        credentials: &BasicCredentials,
    ) -> Outcome {
        let user = self.store.canonical_name(credentials.user.as_str());
        let principal = match keys.verify_key(credentials.password.expose_secret()).await {
            Ok(principal) => principal,
            Err(rejection) => {
                return Outcome::Rejected(rejection.with_attempted_subject(user.as_ref()));
            }
        };
        // The owner's spelling and the sent one are compared as the store compares names.
        if self.store.canonical_name(principal.subject()) == user {
            return Outcome::Authenticated(principal);
        }
        let mut rejection = Rejection::invalid_credentials(
            principal.scheme(),
            "API key sent as the password of a user who does not own it",
        )
        .with_attempted_subject(user.as_ref());
        if let Some(id) = principal.credential_id() {
            rejection = rejection.with_attempted_credential_id(id);
        }
        Outcome::Rejected(rejection)
    }

    async fn verify(
        &self,
        credentials: &BasicCredentials,
        request: &RequestView<'_>,
    ) -> Result<Outcome, Rejection> {
        // One account, one counter: every spelling the store treats as this user is counted,
        // queued and cached under the one name (known or not, alike).
        let user = self.store.canonical_name(credentials.user.as_str());
        let user = user.as_ref();
        let refuse = |rejection: Rejection| Err(rejection.with_attempted_subject(user));
        if let Some(wait) = self.locked_out(user, request).await? {
            return refuse(Rejection::locked_out(wait));
        }
        let record = self.store.find_user(user).await.map_err(unavailable)?;
        let fingerprint = self
            .cache
            .as_ref()
            .map(|cache| cache.fingerprint(user, &credentials.password));
        if let Some(outcome) = self.cached_login(record.as_ref(), fingerprint.as_ref()) {
            if let Some(lockout) = &self.lockout {
                lockout.record_success(user).await.map_err(unavailable)?;
            }
            return Ok(outcome);
        }

        // One check at a time per user name: otherwise guesses queued for the hashing pool would
        // all pass the lockout check before the first failure is counted. Legitimate parallel
        // requests wait their turn, and with the cache on, find the first one's result there.
        let Some(_turn) = self.turns.take(user, self.pool.max_wait()).await else {
            return refuse(
                Rejection::unavailable("too many concurrent attempts for one user")
                    .with_retry_after(Duration::from_secs(1)),
            );
        };
        // From here the attempt is counted (before hashing, so that instances sharing the
        // lockout store count it at once), and every way out ends it.
        if let Some(lockout) = &self.lockout
            && let Some(wait) = lockout
                .begin_attempt(user, request.client_ip())
                .await
                .map_err(unavailable)?
        {
            return refuse(Rejection::locked_out(wait));
        }
        let end = |how: AttemptEnd| self.end_attempt(user, request, how);
        if let Some(outcome) = self.cached_login(record.as_ref(), fingerprint.as_ref()) {
            end(AttemptEnd::Succeeded).await?;
            return Ok(outcome);
        }

        let stored = record.as_ref().map(|r| &r.password_hash);
        let verification = self
            .verify_password(user, &credentials.password, stored, request)
            .await?;

        let record = match record {
            Some(record) if verification.matched && !record.disabled => record,
            record => {
                end(AttemptEnd::Failed).await?;
                let reason = match record {
                    None => "unknown user",
                    Some(r) if r.disabled => "user is disabled",
                    Some(_) => "wrong password",
                };
                return refuse(Rejection::invalid_credentials(Scheme::BASIC, reason));
            }
        };

        end(AttemptEnd::Succeeded).await?;
        let mut current = record.password_hash.clone();
        if let Some(upgraded) = verification.upgraded {
            current = self.store_upgrade(&record, upgraded).await;
        }
        if let (Some(cache), Some(fp)) = (&self.cache, fingerprint) {
            cache.insert(fp, current);
        }
        Ok(Outcome::Authenticated(principal_of(&record)))
    }

    /// Runs argon2 on `password` against `stored` (a dummy hash when there is no such user).
    /// When the password cannot be checked, or the stored hash is malformed, the attempt ends
    /// here and the rejection says why.
    async fn verify_password(
        &self,
        user: &str,
        password: &SecretString,
        stored: Option<&PasswordHash>,
        request: &RequestView<'_>,
    ) -> Result<Verification, Rejection> {
        let end = |how: AttemptEnd| self.end_attempt(user, request, how);
        let rejection = match self.pool.verify(password, stored).await {
            Ok(verification) => return Ok(verification),
            Err(HashError::Busy) => {
                end(AttemptEnd::NotChecked).await?;
                Rejection::unavailable("password hashing pool is busy")
                    .with_retry_after(Duration::from_secs(1))
            }
            Err(HashError::InvalidHash) => {
                // Refused after a dummy verification, like a wrong password, and counted like
                // one: a malformed hash must not stand out by its time or by never locking.
                end(AttemptEnd::Failed).await?;
                tracing::error!(
                    user,
                    "stored password hash is malformed; the user cannot log in"
                );
                Rejection::invalid_credentials(Scheme::BASIC, "stored password hash is malformed")
            }
            Err(err) => {
                end(AttemptEnd::NotChecked).await?;
                Rejection::unavailable(err.to_string())
            }
        };
        Err(rejection.with_attempted_subject(user))
    }

    async fn locked_out(
        &self,
        user: &str,
        request: &RequestView<'_>,
    ) -> Result<Option<Duration>, Rejection> {
        match &self.lockout {
            Some(lockout) => lockout
                .retry_after(user, request.client_ip())
                .await
                .map_err(unavailable),
            None => Ok(None),
        }
    }

    /// Ends an attempt the lockout counted (nothing without lockout).
    async fn end_attempt(
        &self,
        user: &str,
        request: &RequestView<'_>,
        how: AttemptEnd,
    ) -> Result<(), Rejection> {
        match &self.lockout {
            Some(lockout) => lockout
                .end_attempt(user, request.client_ip(), how)
                .await
                .map_err(unavailable),
            None => Ok(()),
        }
    }

    /// A login the verified cache vouches for. The caller clears the user's failures, like any
    /// success (and, inside a counted attempt, takes back its count for the IP).
    fn cached_login(
        &self,
        record: Option<&UserRecord>,
        fingerprint: Option<&[u8; 32]>,
    ) -> Option<Outcome> {
        let (Some(cache), Some(fp), Some(record)) = (&self.cache, fingerprint, record) else {
            return None;
        };
        if record.disabled || !cache.contains(fp, &record.password_hash) {
            return None;
        }
        Some(Outcome::Authenticated(principal_of(record)))
    }

    /// Stores an upgraded hash unless the password changed meanwhile; returns the hash now stored.
    /// A failure is logged, not fatal: the login itself was valid.
    async fn store_upgrade(&self, record: &UserRecord, upgraded: PasswordHash) -> PasswordHash {
        let replaced = self
            .store
            .replace_password_hash(&record.name, &record.password_hash, upgraded.clone())
            .await;
        match replaced {
            Ok(true) => {
                tracing::info!(user = %record.name, "password hash upgraded to current cost");
                upgraded
            }
            Ok(false) => record.password_hash.clone(),
            Err(err) => {
                tracing::warn!(user = %record.name, error = %err, "could not store upgraded hash");
                record.password_hash.clone()
            }
        }
    }
}

fn principal_of(record: &UserRecord) -> Principal {
    Principal::new(&record.name, record.kind, Scheme::BASIC).with_groups(record.groups.clone())
}

fn unavailable(err: StoreError) -> Rejection {
    tracing::warn!(error = %err, "credential store failed");
    Rejection::unavailable(format!("store: {err}"))
}

impl Authenticator for BasicAuthenticator {
    fn scheme(&self) -> Scheme {
        Scheme::BASIC
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("Basic")
            .param("realm", self.realm.clone())
            .param("charset", "UTF-8")
    }

    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::authorization("Basic")]
    }

    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.check(request))
    }

    /// The user store (`basic/users`: a one-row query) and the lockout counters'
    /// (`basic/lockout`: Redis's `PING`), checked at once.
    fn readiness(&self, timeout: Duration) -> BoxFuture<'_, Vec<ComponentStatus>> {
        Box::pin(async move {
            let lockout = self
                .lockout
                .as_ref()
                .map(|lockout| tokio::spawn(lockout.readiness("basic/lockout", timeout)));
            let mut found = vec![health::ping("basic/users", timeout, self.store.ping()).await];
            if let Some(check) = lockout {
                found.push(check.await.unwrap_or_else(|_| {
                    ComponentStatus::not_ready("basic/lockout", "the check failed (panicked)")
                }));
            }
            found
        })
    }
}

/// Why adding a user failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddUserError {
    /// Hashing the password failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds a [`BasicAuthenticator`].
#[derive(Debug)]
#[must_use]
pub struct BasicAuthenticatorBuilder {
    realm: String,
    store: Arc<dyn UserStore>,
    hashing: HashingConfig,
    pool: Option<HashingPool>,
    lockout: Option<Lockout>,
    cache: Option<(Duration, usize)>,
    limits: BasicLimits,
    api_keys: Option<Arc<dyn ApiKeyVerifier>>,
}

impl BasicAuthenticatorBuilder {
    /// The realm in the challenge. Defaults to `api`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// argon2id cost and pool size. Defaults to [`HashingConfig::default`].
    pub fn hashing(mut self, config: HashingConfig) -> Self {
        self.hashing = config;
        self
    }

    /// Shares an existing pool (and its concurrency bound) instead of making one.
    pub fn hashing_pool(mut self, pool: HashingPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Brute-force lockout rules. Defaults to [`Lockout::default`] (in memory).
    pub fn lockout(mut self, lockout: Lockout) -> Self {
        self.lockout = Some(lockout);
        self
    }

    /// Turns brute-force lockout off: every guess costs an attacker only one argon2 run.
    pub fn dangerous_disable_lockout(mut self) -> Self {
        self.lockout = None;
        self
    }

    /// Caches verified credentials for `ttl`, at most `capacity` entries, so repeat requests skip
    /// argon2. Off by default. A changed password or disabled user misses the cache at once.
    pub fn verified_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.cache = Some((ttl, capacity));
        self
    }

    /// Header, user name and password size limits. Defaults to [`BasicLimits::default`].
    pub fn limits(mut self, limits: BasicLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Accepts an API key as the password (`curl -u alice:<key>`), the way Jira and GitHub users
    /// send personal tokens; pass the `ApiKeys` manager (feature `api-key`). Off by default.
    ///
    /// A password shaped like a key ([`ApiKeyVerifier::is_key`]: prefix, length and checksum) is
    /// checked as that key and only as that key: no argon2, no user lookup, and the lockout
    /// counters are neither read nor counted, so a locked-out user's scripts keep working and
    /// bad tokens cannot lock anyone out. It authenticates when the key is valid and its owner is
    /// the user name, both passed through [`UserStore::canonical_name`]; otherwise it is a 401.
    /// The principal is the key's (scheme [`Scheme::API_KEY`], its id, groups and scopes), so a
    /// route with `Schemes::deny([Scheme::BASIC])` refuses passwords and still admits keys;
    /// a refused key is audited as an API key (scheme `api_key`, `attempted_credential_id`).
    /// As with a key in `X-API-Key`, the user record is not read: disabling a user does not
    /// stop their keys, revoking the keys does.
    pub fn accept_api_keys(self, verifier: impl ApiKeyVerifier) -> Self {
        self.api_key_verifier(Arc::new(verifier))
    }

    /// [`accept_api_keys`](Self::accept_api_keys) with a verifier already shared.
    pub(crate) fn api_key_verifier(mut self, verifier: Arc<dyn ApiKeyVerifier>) -> Self {
        self.api_keys = Some(verifier);
        self
    }

    /// Builds the authenticator (making the hashing pool, which computes one hash).
    pub fn build(self) -> Result<BasicAuthenticator, ConfigError> {
        let pool = match self.pool {
            Some(pool) => pool,
            None => HashingPool::new(self.hashing)?,
        };
        Ok(BasicAuthenticator {
            realm: self.realm,
            store: self.store,
            pool,
            lockout: self.lockout,
            cache: self
                .cache
                .map(|(ttl, capacity)| VerifiedCache::new(ttl, capacity)),
            turns: Turns::default(),
            limits: self.limits,
            api_keys: self.api_keys,
        })
    }
}
