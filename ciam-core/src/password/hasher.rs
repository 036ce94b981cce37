//! The password hasher: argon2id hashing, verification of every accepted format, rehash checks.

use std::sync::Arc;

use argon2::{Algorithm, Version};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::argon2id::{self, ArgonHash, SALT_LEN, TAG_LEN};
use super::config::{Argon2Params, FirebaseScryptKey, PasswordConfig, Pepper};
use super::legacy::LegacyHash;
use super::pool::{Pool, Slot};
use super::{MAX_PASSWORD_BYTES, PasswordError, Verification};
use crate::rng::SecureRandom;
use crate::secret::SecretString;

/// Hashes passwords with argon2id and verifies stored hashes, on a bounded thread pool.
///
/// Cheap to clone (the state is shared); the pool threads stop when the last clone is dropped.
/// See the [module documentation](super) for formats, normalisation and bounds.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    params: Argon2Params,
    pepper: Option<Pepper>,
    old_peppers: Vec<Pepper>,
    firebase: Option<Arc<FirebaseScryptKey>>,
    rng: Arc<dyn SecureRandom>,
    pool: Pool,
    /// A current-parameter hash no password matches, verified for unknown users.
    dummy: String,
}

/// A place in the hashing queue, reserved with [`PasswordHasher::reserve`] and used by
/// [`PasswordHasher::verify_reserved`] or [`PasswordHasher::verify_dummy_reserved`].
/// Dropping it unused gives the place back.
#[derive(Debug)]
#[must_use = "a reserved place is given back when dropped"]
pub struct HashingSlot(Slot);

/// The queue lane a verification runs in.
enum Lane {
    Ordinary,
    Priority,
    /// A reserved place, and whether the verification is a trusted device's.
    Reserved(Slot, bool),
}

/// A stored hash after parsing.
enum Stored {
    Argon(ArgonHash),
    Legacy(LegacyHash),
}

fn parse(stored: &str) -> Result<Stored, PasswordError> {
    // Bound the work done on garbage before any parsing.
    if stored.len() > 1024 {
        return Err(PasswordError::UnsupportedFormat);
    }
    if argon2id::is_argon2(stored) {
        argon2id::parse(stored).map(Stored::Argon)
    } else {
        LegacyHash::parse(stored).map(Stored::Legacy)
    }
}

fn check_length(password: &SecretString) -> Result<(), PasswordError> {
    if password.expose().len() > MAX_PASSWORD_BYTES {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// The NFKC form of a password, as hashed by [`PasswordHasher::hash`].
fn normalized(password: &SecretString) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(password.expose().nfkc().collect::<String>().into_bytes())
}

impl PasswordHasher {
    /// Validates the configuration and starts the hashing threads.
    pub fn new(config: PasswordConfig, rng: Arc<dyn SecureRandom>) -> Result<Self, PasswordError> {
        config.validate()?;
        let params = config.argon2;
        let blocks = argon2::Params::new(
            params.m_cost_kib,
            params.t_cost,
            params.p_cost,
            Some(TAG_LEN),
        )
        .map_err(|e| PasswordError::InvalidConfig(format!("argon2 parameters: {e}")))?
        .block_count();
        let mut salt = [0u8; SALT_LEN];
        let mut tag = [0u8; TAG_LEN];
        rng.fill(&mut salt)
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        rng.fill(&mut tag)
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        let dummy = argon2id::encode(&params, config.pepper.as_ref().map(Pepper::id), &salt, &tag);
        let pool = Pool::start(config.pool, blocks, config.niceness)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                pepper: config.pepper.clone(),
                old_peppers: config.old_peppers.clone(),
                firebase: config.firebase.clone().map(Arc::new),
                rng,
                pool,
                dummy,
            }),
        })
    }

    /// Hashes a new password into an argon2id PHC string with the current parameters and pepper.
    ///
    /// The password is NFKC-normalised first. Fails with [`PasswordError::TooLong`] over
    /// 1024 bytes and [`PasswordError::Overloaded`] when the pool queue is full.
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        check_length(password)?;
        let inner = &self.inner;
        let mut salt = [0u8; SALT_LEN];
        inner
            .rng
            .fill(&mut salt)
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        let pwd = normalized(password);
        let key = inner.pepper.as_ref().map(|p| Arc::clone(&p.key));
        let params = inner.params;
        let tag = inner
            .pool
            .run(move |memory| {
                let mut tag = Zeroizing::new([0u8; TAG_LEN]);
                let secret = key.as_ref().map(|k| k.as_slice());
                argon2id::compute(
                    Algorithm::Argon2id,
                    Version::V0x13,
                    &params,
                    secret,
                    &pwd,
                    &salt,
                    &mut tag[..],
                    memory,
                )
                .map(|()| tag)
            })
            .await??;
        Ok(argon2id::encode(
            &params,
            inner.pepper.as_ref().map(Pepper::id),
            &salt,
            &tag[..],
        ))
    }

    /// Checks a password against a stored hash in any accepted format.
    ///
    /// A mismatch is `Ok` with `matched: false`. Malformed or unknown formats are
    /// [`PasswordError::UnsupportedFormat`], costs above the bounds [`PasswordError::CostTooHigh`]
    /// and an unconfigured pepper id [`PasswordError::UnknownPepper`]; none of these ever match.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<Verification, PasswordError> {
        self.verify_lane(password, stored, Lane::Ordinary).await
    }

    /// [`Self::verify`] in the priority lane: a quarter of the queue is kept for it, so
    /// sign-ins from trusted devices (the accounts' owners) are still served while a flood of
    /// other attempts fills the rest.
    pub async fn verify_trusted(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<Verification, PasswordError> {
        self.verify_lane(password, stored, Lane::Priority).await
    }

    /// Reserves a place in the hashing queue for a verification the caller will ask for
    /// after other work ([`Self::verify_reserved`], [`Self::verify_dummy_reserved`]), or
    /// fails fast with [`PasswordError::Overloaded`] and the `retry_after` to answer with.
    ///
    /// A sign-in takes its place after its throttle check and before it reads the stored
    /// hash: past capacity it is refused then, and once admitted it is not refused later for
    /// want of room. `priority` asks for the lane of [`Self::verify_trusted`]; a caller that
    /// cannot yet tell whether the browser's device token is valid may ask for it and say
    /// so later (see [`Self::verify_reserved`]). Dropping the slot gives the place back.
    pub fn reserve(&self, priority: bool) -> Result<HashingSlot, PasswordError> {
        self.inner.pool.reserve(priority).map(HashingSlot)
    }

    /// [`Self::verify`] (or [`Self::verify_trusted`] when `trusted`) in a place taken with
    /// [`Self::reserve`]. A slot reserved in the priority lane for a verification that is
    /// not `trusted` after all keeps its place only if the ordinary lane has room, so a
    /// made-up device token buys nothing; otherwise [`PasswordError::Overloaded`].
    pub async fn verify_reserved(
        &self,
        slot: HashingSlot,
        password: &SecretString,
        stored: &str,
        trusted: bool,
    ) -> Result<Verification, PasswordError> {
        self.verify_lane(password, stored, Lane::Reserved(slot.0, trusted))
            .await
    }

    /// [`Self::verify_dummy`] in a place taken with [`Self::reserve`] (in the ordinary lane:
    /// an unknown account has no trusted device).
    pub async fn verify_dummy_reserved(
        &self,
        slot: HashingSlot,
        password: &SecretString,
    ) -> Result<(), PasswordError> {
        self.verify_lane(password, &self.inner.dummy, Lane::Reserved(slot.0, false))
            .await
            .map(|_| ())
    }

    async fn verify_lane(
        &self,
        password: &SecretString,
        stored: &str,
        lane: Lane,
    ) -> Result<Verification, PasswordError> {
        check_length(password)?;
        match parse(stored)? {
            Stored::Argon(hash) => {
                let key = match &hash.keyid {
                    None => None,
                    Some(id) => Some(Arc::clone(
                        &self
                            .find_pepper(id)
                            .ok_or(PasswordError::UnknownPepper)?
                            .key,
                    )),
                };
                let needs_rehash = !hash.is_current(&self.inner.params, self.current_pepper_id());
                let pwd = if hash.is_native() {
                    normalized(password)
                } else {
                    Zeroizing::new(password.expose().as_bytes().to_vec())
                };
                let matched = self
                    .run_in(lane, move |memory| {
                        hash.verify(&pwd, key.as_ref().map(|k| k.as_slice()), memory)
                    })
                    .await??;
                Ok(Verification {
                    matched,
                    needs_rehash,
                })
            }
            Stored::Legacy(hash) => {
                let firebase = if hash.is_firebase() {
                    Some(
                        self.inner
                            .firebase
                            .clone()
                            .ok_or(PasswordError::UnsupportedFormat)?,
                    )
                } else {
                    None
                };
                let pwd = Zeroizing::new(password.expose().as_bytes().to_vec());
                let matched = self
                    .run_in(lane, move |_| hash.verify(&pwd, firebase.as_deref()))
                    .await??;
                Ok(Verification {
                    matched,
                    needs_rehash: true,
                })
            }
        }
    }

    /// Runs a job in `lane` on the pool.
    async fn run_in<T, F>(&self, lane: Lane, f: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    {
        let pool = &self.inner.pool;
        match lane {
            Lane::Ordinary => pool.run_lane(false, f).await,
            Lane::Priority => pool.run_lane(true, f).await,
            Lane::Reserved(slot, trusted) => pool.run_slot(slot, trusted, f).await,
        }
    }

    /// Does the work of a failed verification against a current-parameter hash, for sign-in
    /// attempts on unknown accounts, so that their timing matches a wrong password.
    pub async fn verify_dummy(&self, password: &SecretString) -> Result<(), PasswordError> {
        self.verify(password, &self.inner.dummy).await.map(|_| ())
    }

    /// Hashing jobs (hashes and verifications) finished since the hasher started: a metric,
    /// and the way tests show that an unknown account costs the same work as a known one.
    pub fn jobs_completed(&self) -> u64 {
        self.inner.pool.completed()
    }

    /// When a hashing job would be refused right now with
    /// [`PasswordError::Overloaded`], the `retry_after` it would carry; `None` when there is
    /// room. `priority` asks about the lane of [`Self::verify_trusted`]. Lets a caller answer
    /// "busy" before doing any other work for a request that could not be hashed anyway.
    pub fn saturated(&self, priority: bool) -> Option<std::time::Duration> {
        self.inner.pool.saturated(priority)
    }

    /// Jobs waiting for a hashing thread right now (reserved places not included).
    pub fn queued(&self) -> usize {
        self.inner.pool.queued()
    }

    /// Whether the hasher's dummy hash (verified for unknown accounts) uses the current
    /// parameters and pepper, so that it costs what a real verification costs.
    #[doc(hidden)]
    pub fn dummy_is_current(&self) -> bool {
        !self.needs_rehash(&self.inner.dummy)
    }

    /// Whether a stored hash should be replaced after the next successful sign-in: true unless
    /// it is argon2id with exactly the current parameters and current pepper (also true for
    /// anything unparseable).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match parse(stored) {
            Ok(Stored::Argon(hash)) => {
                !hash.is_current(&self.inner.params, self.current_pepper_id())
            }
            _ => true,
        }
    }

    fn current_pepper_id(&self) -> Option<&str> {
        self.inner.pepper.as_ref().map(Pepper::id)
    }

    fn find_pepper(&self, id: &str) -> Option<&Pepper> {
        self.inner
            .pepper
            .iter()
            .chain(&self.inner.old_peppers)
            .find(|p| p.id == id)
    }
}
