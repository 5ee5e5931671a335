//! Argon2id password hashes in PHC string form, verified off the async runtime.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use apiauth_core::AuthError;
use tokio::sync::Semaphore;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{BasicConfigError, BasicError};
use crate::parse::nfc;

/// Salt length in bytes: the 128 bits RFC 9106 §3.1 recommends.
const SALT_LEN: usize = 16;

/// Argon2id with chosen costs: makes PHC strings for a [`CredentialStore`](crate::CredentialStore)
/// and the dummy hash that unknown users are checked against.
///
/// The default is the OWASP Password Storage Cheat Sheet setting: argon2id, m = 19456 KiB,
/// t = 2, p = 1 (RFC 9106 §4 leaves the choice to the deployment).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHasher {
    params: Params,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self {
            params: Params::DEFAULT,
        }
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PasswordHasher(argon2id, m={}, t={}, p={})",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost()
        )
    }
}

impl PasswordHasher {
    /// OWASP memory cost, in KiB.
    pub const OWASP_M_COST: u32 = 19 * 1024;
    /// OWASP time cost (passes).
    pub const OWASP_T_COST: u32 = 2;
    /// OWASP parallelism.
    pub const OWASP_P_COST: u32 = 1;

    /// Argon2id with memory `m_cost` KiB, `t_cost` passes and `p_cost` lanes.
    ///
    /// Refuses settings weaker than the OWASP list of equivalent choices (at least 7168 KiB,
    /// and memory × passes at least 35840 KiB): [`BasicConfigError::WeakParams`].
    pub fn with_params(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, BasicConfigError> {
        let product = u64::from(m_cost) * u64::from(t_cost);
        if m_cost < 7 * 1024 || product < 35 * 1024 {
            return Err(BasicConfigError::WeakParams);
        }
        Self::dangerous_with_params(m_cost, t_cost, p_cost)
    }

    /// Argon2id with any costs argon2 accepts, however cheap. For tests only: cheap hashes make
    /// stolen password databases cheap to crack.
    pub fn dangerous_with_params(
        m_cost: u32,
        t_cost: u32,
        p_cost: u32,
    ) -> Result<Self, BasicConfigError> {
        let params =
            Params::new(m_cost, t_cost, p_cost, None).map_err(BasicConfigError::InvalidParams)?;
        Ok(Self { params })
    }

    /// Memory cost in KiB.
    pub fn m_cost(&self) -> u32 {
        self.params.m_cost()
    }

    /// Time cost (passes).
    pub fn t_cost(&self) -> u32 {
        self.params.t_cost()
    }

    /// Parallelism (lanes).
    pub fn p_cost(&self) -> u32 {
        self.params.p_cost()
    }

    /// Hashes `password` (after Unicode NFC, RFC 7617 §2.1) with a fresh random salt, giving a
    /// PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
    ///
    /// This takes tens of milliseconds of CPU on purpose: inside an async runtime call it
    /// through `tokio::task::spawn_blocking`.
    ///
    /// # Panics
    /// If the operating system cannot supply randomness for the salt, which no caller can
    /// recover from safely, or if `password` is longer than 4 GiB.
    #[must_use]
    pub fn hash(&self, password: &str) -> String {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).expect("the OS random number generator failed");
        let normalized = nfc(password);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password_with_salt(normalized.as_bytes(), &salt)
            .map(|h| h.to_string())
            .expect("argon2 refused a password longer than 4 GiB")
    }
}

/// Hashes `password` with the default (OWASP) [`PasswordHasher`]: the PHC string to put in a
/// [`CredentialStore`](crate::CredentialStore). Never store the password itself.
///
/// ```
/// let phc = apiauth_basic::hash_password("correct horse battery staple");
/// assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// ```
///
/// # Panics
/// As [`PasswordHasher::hash`].
#[must_use]
pub fn hash_password(password: &str) -> String {
    PasswordHasher::default().hash(password)
}

/// Checks `password` (after Unicode NFC) against the argon2 PHC string `phc`, on tokio's
/// blocking pool so that the async runtime keeps serving other requests meanwhile. The
/// comparison of the hash outputs is constant-time.
///
/// `Ok(true)`: it matches. `Ok(false)`: it does not. `Err`: `phc` is not an argon2 PHC string,
/// or the blocking task could not finish.
pub async fn verify_password(phc: &str, password: &str) -> Result<bool, BasicError> {
    let phc = phc.to_owned();
    let password = nfc(password);
    tokio::task::spawn_blocking(move || verify_blocking(&phc, password.as_bytes()))
        .await
        .map_err(|_| BasicError::VerificationAborted)?
}

/// The synchronous check: runs argon2 with the parameters recorded in `phc`.
fn verify_blocking(phc: &str, password: &[u8]) -> Result<bool, BasicError> {
    let hash = PasswordHash::new(phc).map_err(|_| BasicError::MalformedHash)?;
    match Argon2::default().verify_password(password, &hash) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(BasicError::MalformedHash),
    }
}

/// Checks presented passwords the way a login endpoint must: argon2 on tokio's blocking pool,
/// at most `max_concurrent` runs at once with a bounded wait for a slot, and unknown users
/// checked against a dummy hash of the same cost so they take as long as a wrong password.
///
/// [`BasicAuth`](crate::BasicAuth) uses one; an OAuth 2.0 token endpoint authenticating clients
/// (RFC 6749 §2.3.1) can use one directly.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use apiauth_basic::{PasswordChecker, PasswordHasher};
///
/// let hasher = PasswordHasher::default();
/// let checker = PasswordChecker::new(&hasher, 4, Duration::from_secs(5))?;
/// let stored: Option<String> = None; // the client id was not found
/// // Same cost as a wrong secret, and never a match.
/// assert!(!checker.check(stored.as_deref(), "presented secret").await?);
/// # Ok(()) }
/// ```
pub struct PasswordChecker {
    dummy_hash: String,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    runs: AtomicU64,
}

impl fmt::Debug for PasswordChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChecker")
            .field("queue_timeout", &self.queue_timeout)
            .field("runs", &self.runs())
            .finish_non_exhaustive()
    }
}

impl PasswordChecker {
    /// A checker whose dummy hash is made by `hasher` (one argon2 run, now). Use the hasher
    /// that made the stored hashes, so that both cost the same.
    pub fn new(
        hasher: &PasswordHasher,
        max_concurrent: usize,
        queue_timeout: Duration,
    ) -> Result<Self, BasicConfigError> {
        if max_concurrent == 0 {
            return Err(BasicConfigError::InvalidSetting(
                "max_concurrent_verifications must be at least 1",
            ));
        }
        let mut dummy_password = [0u8; 32];
        getrandom::fill(&mut dummy_password).map_err(|_| BasicConfigError::Randomness)?;
        let dummy_password: String = dummy_password.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            dummy_hash: hasher.hash(&dummy_password),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            queue_timeout,
            runs: AtomicU64::new(0),
        })
    }

    /// Whether `password` matches the PHC string `stored`; `None` (no such user) runs argon2
    /// against the dummy hash and answers `false`.
    ///
    /// Errors are 503 [`AuthError`]s, for the request path: no verification slot within the
    /// queue timeout (`verifier_busy`), a stored hash argon2 cannot read
    /// (`stored_hash_invalid`), or a runtime shutting down (`verification_aborted`). None of
    /// them is a pass or a wrong password.
    pub async fn check(&self, stored: Option<&str>, password: &str) -> Result<bool, AuthError> {
        let permit =
            match tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) | Err(_) => return Err(AuthError::unavailable("verifier_busy")),
            };
        self.runs.fetch_add(1, Ordering::Relaxed);
        let known = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = nfc(password);
        // The permit moves into the blocking task, so a client that disconnects cannot free
        // its slot while argon2 still runs.
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_blocking(&phc, password.as_bytes())
        })
        .await;
        match outcome {
            Ok(Ok(matched)) => Ok(matched && known),
            Ok(Err(_)) => Err(AuthError::unavailable("stored_hash_invalid")),
            Err(_) => Err(AuthError::unavailable("verification_aborted")),
        }
    }

    /// Argon2 runs started so far (real and dummy alike).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::dangerous_with_params(64, 1, 1).unwrap()
    }

    #[test]
    fn weak_params_need_the_dangerous_constructor() {
        assert_eq!(
            PasswordHasher::with_params(64, 1, 1),
            Err(BasicConfigError::WeakParams)
        );
        assert!(PasswordHasher::with_params(47 * 1024, 1, 1).is_ok());
        assert!(PasswordHasher::with_params(19 * 1024, 2, 1).is_ok());
        assert!(PasswordHasher::with_params(12 * 1024, 2, 1).is_err());
        assert!(PasswordHasher::dangerous_with_params(0, 1, 1).is_err());
    }

    #[test]
    fn hashes_are_salted_argon2id_phc_strings() {
        let h = cheap();
        let a = h.hash("pw");
        let b = h.hash("pw");
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "two hashes of one password must differ by salt");
        assert!(!a.contains("pw$"));
    }

    #[tokio::test]
    async fn verify_accepts_the_password_and_refuses_others() {
        let phc = cheap().hash("open sesame");
        assert_eq!(verify_password(&phc, "open sesame").await, Ok(true));
        assert_eq!(verify_password(&phc, "open sesam").await, Ok(false));
        assert_eq!(verify_password(&phc, "").await, Ok(false));
        assert_eq!(
            verify_password("$plaintext$x", "x").await,
            Err(BasicError::MalformedHash)
        );
        assert_eq!(
            verify_password("open sesame", "open sesame").await,
            Err(BasicError::MalformedHash)
        );
    }

    #[tokio::test]
    async fn hashing_and_verifying_normalize_to_nfc() {
        // "é" precomposed (U+00E9) and decomposed (e + U+0301) are one password.
        let phc = cheap().hash("caf\u{e9}");
        assert_eq!(verify_password(&phc, "cafe\u{301}").await, Ok(true));
    }
}
