//! Users and passwords. Passwords are kept only as argon2 hashes, in
//! `users.json` next to the data (in memory for `memory://` databases).
//! The first start creates user `driftdb` with the password from
//! `DRIFTDB_PASSWORD`, or generates one and prints it once.
//!
//! A login costs the same whether or not the user exists (an unknown user
//! is checked against a dummy hash made with the same parameters), and at
//! most `login_verifications_max` argon2 verifications (~19 MiB each) run
//! at once: [`LoginGate`] makes the rest wait, up to `login_waiters_max`,
//! and refuses more.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{Result, ServerError};

/// The user the first start creates.
pub const DEFAULT_USER: &str = "driftdb";
/// The variable that sets the first user's password.
pub const PASSWORD_VARIABLE: &str = "DRIFTDB_PASSWORD";
/// File (in the data folder) holding user names and password hashes.
pub use driftdb_engine::backup::USERS_FILE;
/// Length of a generated password, in characters.
const GENERATED_PASSWORD_CHARS: usize = 24;
/// Random bytes in a session token.
const TOKEN_BYTES: usize = 32;

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    /// User name → argon2 PHC string.
    users: HashMap<String, String>,
}

/// The server's users.
#[derive(Debug)]
pub struct Users {
    hashes: HashMap<String, String>,
    /// The hash of a random password nobody knows, made like the real ones:
    /// an unknown user is verified against it, so it costs the same as a
    /// known user with a wrong password.
    dummy_hash: String,
}

/// What opening the user store did.
#[derive(Debug)]
pub struct UsersOpened {
    pub users: Users,
    /// A password generated for the first user, to print once.
    pub generated_password: Option<String>,
    pub path: Option<PathBuf>,
}

impl Users {
    /// Load `users.json` from `folder` (or nothing, for in-memory databases),
    /// creating the first user if there is none.
    pub fn open(folder: Option<PathBuf>, initial_password: Option<String>) -> Result<UsersOpened> {
        let path = folder.map(|f| f.join(USERS_FILE));
        let stored = match &path {
            Some(p) if p.exists() => Some(std::fs::read(p)?),
            _ => None,
        };
        let name = path.as_ref().map(|p| p.display().to_string());
        let (mut opened, to_store) = Self::from_stored(
            stored.as_deref(),
            name.as_deref().unwrap_or(USERS_FILE),
            initial_password,
        )?;
        if let (Some(p), Some(bytes)) = (&path, to_store) {
            write_private(p, &bytes)?;
        }
        opened.path = path;
        Ok(opened)
    }

    /// The users in the bytes of a users file (`name` for messages), or
    /// the first user if there are none; also the bytes to store when the
    /// first user was created.
    pub fn from_stored(
        stored: Option<&[u8]>,
        name: &str,
        initial_password: Option<String>,
    ) -> Result<(UsersOpened, Option<Vec<u8>>)> {
        let mut file = match stored {
            Some(bytes) => serde_json::from_slice::<UsersFile>(bytes)
                .map_err(|e| ServerError::Config(format!("{name} is not a users file: {e}")))?,
            None => UsersFile::default(),
        };
        let mut generated_password = None;
        let mut to_store = None;
        if file.users.is_empty() {
            let password = match initial_password {
                Some(p) if !p.is_empty() => p,
                _ => {
                    let p = generate_password();
                    generated_password = Some(p.clone());
                    p
                }
            };
            file.users
                .insert(DEFAULT_USER.into(), hash_password(&password)?);
            to_store = Some(serde_json::to_vec_pretty(&file).expect("serialisable"));
        }
        let opened = UsersOpened {
            users: Users {
                hashes: file.users,
                dummy_hash: hash_password(&generate_password())?,
            },
            generated_password,
            path: None,
        };
        Ok((opened, to_store))
    }

    /// Whether `password` is `user`'s. Slow on purpose (argon2): call off the async runtime.
    /// An unknown user takes as long as a known one.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let (known, hash) = match self.hashes.get(user) {
            Some(hash) => (true, hash),
            None => (false, &self.dummy_hash),
        };
        let matches = PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && matches
    }
}

/// Bounds the password verifications running, and the logins waiting for one.
#[derive(Debug)]
pub struct LoginGate {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    waiters_max: usize,
}

impl LoginGate {
    pub fn new(verifications_max: usize, waiters_max: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(verifications_max.max(1))),
            waiting: AtomicUsize::new(0),
            waiters_max,
        }
    }

    /// A slot for one verification; waits for one to free up, or fails at
    /// once when `waiters_max` logins are waiting already.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel) + 1;
        let _counted = Waiting(&self.waiting);
        if waiting > self.waiters_max {
            return Err(ServerError::LoginsBusy {
                waiting: waiting - 1,
            });
        }
        self.running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServerError::Unauthenticated("the server is shutting down".into()))
    }

    /// Logins waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Counts one waiting login until dropped (also when the caller gives up).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn hash_password(password: &str) -> Result<String> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ServerError::Config(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServerError::Config(format!("hashing the password: {e}")))
}

fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..GENERATED_PASSWORD_CHARS)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new random session token.
pub fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Base64 that accepts input with or without `=` padding (ADBC sends none).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The credentials of an `authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Parse an `authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Credentials> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(rest.to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ServerError::Unauthenticated(format!(
            "unsupported authorization scheme {scheme:?}"
        )));
    }
    let decoded = LENIENT_BASE64
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ServerError::Unauthenticated("malformed basic credentials".into()))?;
    let (user, password) = decoded.split_once(':').ok_or_else(|| {
        ServerError::Unauthenticated("basic credentials need user:password".into())
    })?;
    Ok(Credentials::Basic {
        user: user.into(),
        password: password.into(),
    })
}

/// Write a file only its owner can read (0600 from creation), atomically
/// and durably: temp file, fsync, rename, fsync the folder.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use driftdb_engine::storage::durable::{DurableFs, LocalFs};
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(ServerError::Config(format!(
            "{} is not a file path",
            path.display()
        )));
    };
    LocalFs.create_dir_all(dir)?;
    LocalFs.write_file_atomic(dir, name, bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_with_or_without_padding() {
        let padded = base64::engine::general_purpose::STANDARD.encode("ada:pass");
        let unpadded = padded.trim_end_matches('=').to_string();
        assert_ne!(padded, unpadded, "the sample must need padding");
        for encoded in [padded, unpadded] {
            assert_eq!(
                parse_authorization(&format!("Basic {encoded}")).unwrap(),
                Credentials::Basic {
                    user: "ada".into(),
                    password: "pass".into()
                }
            );
        }
        assert_eq!(
            parse_authorization("Bearer abc").unwrap(),
            Credentials::Bearer("abc".into())
        );
        assert!(parse_authorization("Digest x").is_err());
    }

    #[test]
    fn first_start_stores_only_a_hash_and_verifies_it() {
        let dir = tempfile::tempdir().unwrap();
        let opened = Users::open(Some(dir.path().into()), Some("s3cret".into())).unwrap();
        assert!(opened.generated_password.is_none());
        let stored = std::fs::read_to_string(dir.path().join(USERS_FILE)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(USERS_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        assert!(!stored.contains("s3cret"));
        assert!(stored.contains("$argon2"));
        let again = Users::open(Some(dir.path().into()), None).unwrap();
        assert!(again.users.verify(DEFAULT_USER, "s3cret"));
        assert!(!again.users.verify(DEFAULT_USER, "wrong"));
        assert!(!again.users.verify("nobody", "s3cret"));
    }

    #[test]
    fn an_unknown_user_is_verified_against_a_hash_like_the_real_ones() {
        let opened = Users::open(None, Some("s3cret".into())).unwrap();
        let users = opened.users;
        let real = PasswordHash::new(&users.hashes[DEFAULT_USER]).unwrap();
        let dummy = PasswordHash::new(&users.dummy_hash).unwrap();
        assert_eq!(real.algorithm, dummy.algorithm);
        assert_eq!(real.version, dummy.version);
        assert_eq!(
            real.params.iter().collect::<Vec<_>>(),
            dummy.params.iter().collect::<Vec<_>>()
        );
        assert_ne!(real.salt, dummy.salt);
        assert!(!users.verify("nobody", "s3cret"));
        assert!(!users.verify("nobody", ""));
    }

    #[tokio::test]
    async fn the_login_gate_bounds_running_and_waiting_logins() {
        let gate = Arc::new(LoginGate::new(1, 1));
        let first = gate.enter().await.unwrap();
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.map(drop) })
        };
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = gate.enter().await.unwrap_err();
        assert!(
            matches!(refused, ServerError::LoginsBusy { waiting: 1 }),
            "{refused}"
        );
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(gate.waiting(), 0);
        drop(gate.enter().await.unwrap());
    }

    #[test]
    fn a_password_is_generated_when_none_is_given() {
        let opened = Users::open(None, None).unwrap();
        let password = opened.generated_password.unwrap();
        assert_eq!(password.len(), GENERATED_PASSWORD_CHARS);
        assert!(opened.users.verify(DEFAULT_USER, &password));
    }
}
