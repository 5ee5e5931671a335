//! The authorization server's private signing keys, sealed at rest with AES-256-GCM under a
//! key-encryption key (KEK) that the operator supplies and the database never sees.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::db::SqlDatabase;
use crate::error::{SqlError, corrupt};
use crate::time::{from_opt_secs, from_secs, secs};

/// The one algorithm stored today (RFC 7518 §3.4), also sealed into each key's AAD.
const ES256: &str = "ES256";
/// The plaintext sealed in `apiauth_kek_check`.
const CHECK_PLAINTEXT: &[u8] = b"apiauth key-encryption key check v1";
const CHECK_AAD: &[u8] = b"apiauth-kek-check-v1";

/// A 256-bit AES key that seals signing keys at rest. Give it through a flag or the
/// environment (64 hex digits or base64 of 32 bytes, as [`generate`](Self::generate) prints);
/// it is never written to the database, and `Debug` shows nothing of it.
///
/// Losing it loses the stored signing keys (tokens they signed stop verifying once the
/// server has new keys); a wrong one is refused by [`SqlSigningKeyStore::open`].
#[derive(Clone)]
pub struct KeyEncryptionKey {
    key: Arc<LessSafeKey>,
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// From 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SqlError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SqlError::Crypto("AES-256-GCM key"))?;
        Ok(Self {
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// From 64 hex digits or base64 (standard or URL-safe, padded or not) of 32 bytes;
    /// surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, SqlError> {
        let text = text.trim();
        let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(if text.len() == 64 {
            decode_hex(text).ok_or(SqlError::KekFormat)?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE.decode(text))
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| SqlError::KekFormat)?
        });
        let arr: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SqlError::KekFormat)?,
        );
        Self::from_bytes(&arr)
    }

    /// A fresh random key, and its base64 form to hand to the operator once.
    pub fn generate() -> Result<(Self, Zeroizing<String>), SqlError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| SqlError::Crypto("random generation"))?;
        let text = Zeroizing::new(STANDARD.encode(&bytes[..]));
        Ok((Self::from_bytes(&bytes)?, text))
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>), SqlError> {
        // A random 96-bit nonce per seal: few keys are ever sealed under one KEK, far below
        // the 2^32 messages NIST SP 800-38D §8.3 allows for random nonces.
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SqlError::Crypto("random nonce"))?;
        let mut out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out,
            )
            .map_err(|_| SqlError::Crypto("seal"))?;
        Ok((nonce, out))
    }

    /// `None` when the tag does not verify: another KEK, another AAD, or a changed row.
    fn open(&self, aad: &[u8], nonce: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf[..])
            .ok()?;
        Some(Zeroizing::new(plain.to_vec()))
    }
}

/// Strict: an odd length or any non-hex digit is refused.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

/// What is authenticated with each sealed key: its id and algorithm, so a sealed key cannot
/// be moved to another row or relabelled.
fn key_aad(kid: &str) -> Vec<u8> {
    let mut aad = b"apiauth-signing-key-v1\0".to_vec();
    aad.extend_from_slice(ES256.as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

/// One signing key as loaded: its id (the RFC 7638 JWK thumbprint, the `kid` the
/// authorization server publishes) and its private key as PKCS#8 DER, for
/// `AuthorizationServerBuilder::signing_key_der`. `Debug` shows only the id; the DER is wiped
/// on drop.
pub struct StoredSigningKey {
    kid: String,
    created_at: SystemTime,
    der: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl StoredSigningKey {
    /// The key id: the RFC 7638 SHA-256 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// When the key was stored.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// The private key, PKCS#8 v1 DER.
    pub fn private_key_der(&self) -> &[u8] {
        &self.der
    }
}

/// A stored key's public facts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigningKeyInfo {
    /// The key id.
    pub kid: String,
    /// When it was stored.
    pub created_at: SystemTime,
    /// When it was retired, if it was.
    pub retired_at: Option<SystemTime>,
}

/// Checks a P-256 private key (PKCS#8 or RFC 5915 DER), returning its PKCS#8 v1 form and its
/// RFC 7638 thumbprint.
fn normalise(der: &[u8]) -> Result<(Zeroizing<Vec<u8>>, String), SqlError> {
    let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
        .map_err(|_| SqlError::InvalidSigningKey)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| SqlError::InvalidSigningKey)?;
    let kid = thumbprint(pair.public_key().as_ref())?;
    Ok((Zeroizing::new(pkcs8.as_ref().to_vec()), kid))
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(point: &[u8]) -> Result<String, SqlError> {
    // An uncompressed SEC1 point: 0x04 || x || y.
    let (x, y) = match point {
        [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(SqlError::InvalidSigningKey),
    };
    let json = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes())))
}

/// The authorization server's ES256 signing keys in SQL (table `apiauth_signing_keys`),
/// sealed with AES-256-GCM under a [`KeyEncryptionKey`]; the key id and algorithm are the
/// AAD. The database holds no private key in clear, and no key can be moved between rows.
///
/// Instances sharing the database and the KEK load the same current key, so tokens issued by
/// one verify on another and survive restarts:
///
/// ```no_run
/// # async fn f(db: apiauth_sql::SqlDatabase) -> Result<(), Box<dyn std::error::Error>> {
/// use apiauth_sql::{KeyEncryptionKey, SqlSigningKeyStore};
/// let kek = KeyEncryptionKey::parse(&std::env::var("APP_KEK")?)?;
/// let keys = SqlSigningKeyStore::open(&db, kek).await?; // a wrong KEK fails here
/// let current = keys.current_or_generate().await?;
/// let server = apiauth_oauth2::AuthorizationServer::builder("https://as.example")
///     .key_rotation(apiauth_oauth2::KeyRotation::manual())
///     .signing_key_der(current.private_key_der());
/// # let _ = server; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlSigningKeyStore {
    db: SqlDatabase,
    kek: KeyEncryptionKey,
}

impl fmt::Debug for SqlSigningKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSigningKeyStore").finish_non_exhaustive()
    }
}

impl SqlSigningKeyStore {
    /// Opens the store under `kek`. The first open seals a check value; every later one
    /// must open it, so a wrong KEK is [`SqlError::WrongKek`] at startup, before any key is
    /// needed.
    pub async fn open(db: &SqlDatabase, kek: KeyEncryptionKey) -> Result<Self, SqlError> {
        let (nonce, sealed) = kek.seal(CHECK_AAD, CHECK_PLAINTEXT)?;
        db.run("kek_check_init", async {
            sqlx::query(
                "INSERT INTO apiauth_kek_check (id, nonce, sealed) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(nonce.to_vec())
            .bind(sealed)
            .execute(db.pool())
            .await
        })
        .await?;
        let row = db
            .run("kek_check_read", async {
                sqlx::query("SELECT nonce, sealed FROM apiauth_kek_check WHERE id = 1")
                    .fetch_one(db.pool())
                    .await
            })
            .await?;
        let nonce: Vec<u8> = row.try_get("nonce").map_err(|_| corrupt("kek_check"))?;
        let sealed: Vec<u8> = row.try_get("sealed").map_err(|_| corrupt("kek_check"))?;
        match kek.open(CHECK_AAD, &nonce, &sealed) {
            Some(p) if apiauth_core::token::ct_eq(&p, CHECK_PLAINTEXT) => Ok(Self {
                db: db.clone(),
                kek,
            }),
            _ => Err(SqlError::WrongKek),
        }
    }

    /// Stores a P-256 private key (PKCS#8 or RFC 5915 DER, e.g. from a PEM file), sealed;
    /// returns its key id. Storing the same key again changes nothing.
    pub async fn insert_der(&self, der: &[u8]) -> Result<String, SqlError> {
        let (pkcs8, kid) = normalise(der)?;
        let (nonce, sealed) = self.kek.seal(&key_aad(&kid), &pkcs8)?;
        let now = secs(self.db.clock().now());
        self.db
            .run("signing_key_insert", async {
                sqlx::query(
                    "INSERT INTO apiauth_signing_keys
                       (kid, algorithm, nonce, sealed, created_at, retired_at)
                     VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&kid)
                .bind(ES256)
                .bind(nonce.to_vec())
                .bind(sealed)
                .bind(now)
                .execute(self.db.pool())
                .await
            })
            .await?;
        Ok(kid)
    }

    /// Generates, seals and stores a new P-256 key; returns its id.
    pub async fn generate(&self) -> Result<String, SqlError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| SqlError::Crypto("P-256 key generation"))?;
        let der = Zeroizing::new(pkcs8.as_ref().to_vec());
        self.insert_der(&der).await
    }

    /// The key named `kid`, unsealed.
    pub async fn get(&self, kid: &str) -> Result<Option<StoredSigningKey>, SqlError> {
        let row = self
            .db
            .run("signing_key_get", async {
                sqlx::query(
                    "SELECT kid, nonce, sealed, created_at FROM apiauth_signing_keys
                     WHERE kid = $1",
                )
                .bind(kid)
                .fetch_optional(self.db.pool())
                .await
            })
            .await?;
        row.map(|r| self.unseal(&r)).transpose()
    }

    /// The current key: the oldest one not retired. Instances agree on it, whatever order
    /// they started in.
    pub async fn current(&self) -> Result<Option<StoredSigningKey>, SqlError> {
        let row = self
            .db
            .run("signing_key_current", async {
                sqlx::query(
                    "SELECT kid, nonce, sealed, created_at FROM apiauth_signing_keys
                     WHERE retired_at IS NULL ORDER BY created_at, kid LIMIT 1",
                )
                .fetch_optional(self.db.pool())
                .await
            })
            .await?;
        row.map(|r| self.unseal(&r)).transpose()
    }

    /// The current key, generating one first when there is none. Two instances starting at
    /// once may both generate; both then load the same (the oldest).
    pub async fn current_or_generate(&self) -> Result<StoredSigningKey, SqlError> {
        if let Some(k) = self.current().await? {
            return Ok(k);
        }
        self.generate().await?;
        self.current()
            .await?
            .ok_or(SqlError::Crypto("generated key not found"))
    }

    /// Retires `kid`: it is no longer current. `false` if there is no such live key.
    pub async fn retire(&self, kid: &str) -> Result<bool, SqlError> {
        let now = secs(self.db.clock().now());
        let n = self
            .db
            .run("signing_key_retire", async {
                sqlx::query(
                    "UPDATE apiauth_signing_keys SET retired_at = $1
                     WHERE kid = $2 AND retired_at IS NULL",
                )
                .bind(now)
                .bind(kid)
                .execute(self.db.pool())
                .await
            })
            .await?;
        Ok(n.rows_affected() == 1)
    }

    /// Every stored key's public facts, oldest first.
    pub async fn list(&self) -> Result<Vec<SigningKeyInfo>, SqlError> {
        const OP: &str = "signing_key_list";
        let rows = self
            .db
            .run(OP, async {
                sqlx::query(
                    "SELECT kid, created_at, retired_at FROM apiauth_signing_keys
                     ORDER BY created_at, kid",
                )
                .fetch_all(self.db.pool())
                .await
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let created: i64 = r.try_get("created_at").map_err(|_| corrupt(OP))?;
            let retired: Option<i64> = r.try_get("retired_at").map_err(|_| corrupt(OP))?;
            out.push(SigningKeyInfo {
                kid: r.try_get("kid").map_err(|_| corrupt(OP))?,
                created_at: from_secs(OP, created)?,
                retired_at: from_opt_secs(OP, retired)?,
            });
        }
        Ok(out)
    }

    /// Re-seals every stored key and the check value under `new` in one transaction, and
    /// returns the store under it; the old KEK opens nothing afterwards. Instances still
    /// running with the old KEK keep the keys they loaded, and refuse to start with it again.
    pub async fn rekey(&self, new: KeyEncryptionKey) -> Result<Self, SqlError> {
        const OP: &str = "signing_key_rekey";
        let rows = self
            .db
            .run(OP, async {
                sqlx::query("SELECT kid, nonce, sealed, created_at FROM apiauth_signing_keys")
                    .fetch_all(self.db.pool())
                    .await
            })
            .await?;
        let mut resealed = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = self.unseal(row)?;
            let old_nonce: Vec<u8> = row.try_get("nonce").map_err(|_| corrupt(OP))?;
            let (nonce, sealed) = new.seal(&key_aad(&key.kid), &key.der)?;
            resealed.push((key.kid, old_nonce, nonce.to_vec(), sealed));
        }
        let (check_nonce, check) = new.seal(CHECK_AAD, CHECK_PLAINTEXT)?;
        let complete = self
            .db
            .run(OP, async {
                let mut tx = self.db.pool().begin().await?;
                // A write first, so SQLite takes its write lock before anything is read.
                sqlx::query("UPDATE apiauth_kek_check SET nonce = $1, sealed = $2 WHERE id = 1")
                    .bind(check_nonce.to_vec())
                    .bind(check)
                    .execute(&mut *tx)
                    .await?;
                let mut changed = 0;
                for (kid, old_nonce, nonce, sealed) in &resealed {
                    // Only the row as read: a key sealed meanwhile under the old KEK aborts.
                    changed += sqlx::query(
                        "UPDATE apiauth_signing_keys SET nonce = $1, sealed = $2
                         WHERE kid = $3 AND nonce = $4",
                    )
                    .bind(nonce.clone())
                    .bind(sealed.clone())
                    .bind(kid)
                    .bind(old_nonce.clone())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM apiauth_signing_keys")
                    .fetch_one(&mut *tx)
                    .await?;
                if changed as usize == resealed.len() && total as usize == resealed.len() {
                    tx.commit().await?;
                    Ok(true)
                } else {
                    tx.rollback().await?;
                    Ok(false)
                }
            })
            .await?;
        if !complete {
            return Err(SqlError::Store(apiauth_core::StoreError::Unavailable(
                "sql: signing keys changed during rekey; nothing was changed, retry".into(),
            )));
        }
        Ok(Self {
            db: self.db.clone(),
            kek: new,
        })
    }

    fn unseal(&self, row: &sqlx::any::AnyRow) -> Result<StoredSigningKey, SqlError> {
        const OP: &str = "signing_key_read";
        let kid: String = row.try_get("kid").map_err(|_| corrupt(OP))?;
        let nonce: Vec<u8> = row.try_get("nonce").map_err(|_| corrupt(OP))?;
        let sealed: Vec<u8> = row.try_get("sealed").map_err(|_| corrupt(OP))?;
        let created: i64 = row.try_get("created_at").map_err(|_| corrupt(OP))?;
        let der = self
            .kek
            .open(&key_aad(&kid), &nonce, &sealed)
            .ok_or(SqlError::WrongKek)?;
        // The row's id must be the key's own thumbprint: nothing was swapped in.
        let (der, actual) = normalise(&der)?;
        if actual != kid {
            return Err(SqlError::InvalidSigningKey);
        }
        Ok(StoredSigningKey {
            kid,
            created_at: from_secs(OP, created)?,
            der,
        })
    }
}
