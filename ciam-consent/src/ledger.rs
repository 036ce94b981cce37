//! [`ConsentLedger`]: recording, enforcement, proofs, erasure, anchors and receipts.

use std::collections::HashMap;
use std::sync::Arc;

use ciam_core::clock::{Clock, SystemClock};
use ciam_core::id::UserId;
use ciam_core::rng::{SecureRandom, SystemRandom};
use ciam_core::store::StoreError;
use time::{Duration, OffsetDateTime};

use crate::anchor::{Anchor, AnchorCheck, verify_anchor};
use crate::cache::{Cached, DecisionCache};
use crate::chain::{
    ChainHead, ChainVerifier, RecordBody, RecordId, StoredRecord, hex, verify_subject,
};
use crate::decision::{self, Decision, Permission, ReconsentNeeded};
use crate::error::Error;
use crate::keys::{PublicJwk, SigningKey};
use crate::model::{Catalog, ConsentEvent, EventKind, LegalBasis, PersonalData, Source};
use crate::receipt::{
    ConsentReceipt, KANTARA_VERSION, LedgerLink, ReceiptConfig, ReceiptPurpose, Service,
};
use crate::seal::{DataKey, MasterKey};
use crate::store::{ConsentStore, KeyState};

/// Default number of subjects the decision cache holds.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
/// Default time a cached decision is served (the bound on staleness for changes made by other
/// processes).
pub const DEFAULT_CACHE_TTL: Duration = Duration::seconds(5);
/// Records read per page by [`ConsentLedger::verify`].
const VERIFY_PAGE: usize = 1_000;
/// Longest application, channel, jurisdiction, language, attribute key or value accepted.
const MAX_TEXT: usize = 1_024;
/// Most personal attributes per record.
const MAX_ATTRIBUTES: usize = 64;

/// A ledger record with its personal part opened (or not, once erased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The record as stored.
    pub record: StoredRecord,
    /// Its personal part.
    pub personal: Personal,
}

/// The personal part of a record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Personal {
    /// Opened with the subject's data key.
    Open(PersonalData),
    /// The subject was erased: the data key is destroyed and the ciphertext cannot be opened.
    Erased,
}

/// Builds a [`ConsentLedger`].
#[derive(Debug)]
pub struct LedgerBuilder {
    store: Arc<dyn ConsentStore>,
    catalog: Catalog,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    cache_capacity: usize,
    cache_ttl: Duration,
}

impl LedgerBuilder {
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The random source (default: the operating system's).
    pub fn rng(mut self, rng: Arc<dyn SecureRandom>) -> Self {
        self.rng = rng;
        self
    }

    /// How many subjects the decision cache holds (default [`DEFAULT_CACHE_CAPACITY`]; 0
    /// turns the cache off).
    pub fn cache_capacity(mut self, subjects: usize) -> Self {
        self.cache_capacity = subjects;
        self
    }

    /// How long a cached decision is served (default [`DEFAULT_CACHE_TTL`]).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Builds the ledger.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPolicyVersion`] when the catalog has no policy version.
    pub fn build(self) -> Result<ConsentLedger, Error> {
        if self.catalog.policies().is_empty() {
            return Err(Error::UnknownPolicyVersion);
        }
        Ok(ConsentLedger {
            inner: Arc::new(Inner {
                store: self.store,
                catalog: self.catalog,
                master: self.master,
                clock: self.clock,
                rng: self.rng,
                cache: DecisionCache::new(self.cache_capacity),
                cache_ttl: self.cache_ttl,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ConsentStore>,
    catalog: Catalog,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    cache: DecisionCache,
    cache_ttl: Duration,
}

/// The consent ledger. Cheap to clone (clones share the store, the keys and the cache).
#[derive(Debug, Clone)]
pub struct ConsentLedger {
    inner: Arc<Inner>,
}

fn check_text(s: &str, what: &'static str) -> Result<(), Error> {
    if s.len() > MAX_TEXT {
        return Err(Error::InvalidInput(what));
    }
    Ok(())
}

fn map_append(e: StoreError) -> Error {
    match e {
        StoreError::Conflict("erased") => Error::Erased,
        other => Error::Store(other),
    }
}

impl ConsentLedger {
    /// Starts building a ledger over `store`, for the purposes and policies of `catalog`,
    /// sealing personal data under `master`.
    pub fn builder(
        store: Arc<dyn ConsentStore>,
        catalog: Catalog,
        master: MasterKey,
    ) -> LedgerBuilder {
        LedgerBuilder {
            store,
            catalog,
            master,
            clock: Arc::new(SystemClock),
            rng: Arc::new(SystemRandom::new()),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cache_ttl: DEFAULT_CACHE_TTL,
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ConsentStore> {
        &self.inner.store
    }

    /// Records a consent event for `user` (appended to the ledger with its outbox event, in
    /// one transaction) and evicts the user's cached decisions.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPurpose`], [`Error::UnknownPolicyVersion`], [`Error::InvalidInput`]
    /// for over-long texts, [`Error::Erased`] when the user was erased, [`Error::Store`].
    pub async fn record(&self, user: UserId, event: ConsentEvent) -> Result<ConsentRecord, Error> {
        let inner = &self.inner;
        let purpose = inner
            .catalog
            .get(event.purpose.as_str())
            .ok_or(Error::UnknownPurpose)?;
        check_text(&event.source.application, "application")?;
        check_text(&event.source.channel, "channel")?;
        let personal = &event.personal;
        for (what, v) in [
            ("jurisdiction", &personal.jurisdiction),
            ("language", &personal.language),
        ] {
            if let Some(v) = v {
                check_text(v, what)?;
            }
        }
        if personal.attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::InvalidInput("attributes"));
        }
        for (k, v) in &personal.attributes {
            check_text(k, "attribute")?;
            check_text(v, "attribute")?;
        }
        let now = inner.clock.now();
        let policy_version = match event.policy_version {
            Some(v) => {
                inner
                    .catalog
                    .policy_version(v)
                    .ok_or(Error::UnknownPolicyVersion)?
                    .version
            }
            None => {
                inner
                    .catalog
                    .policy_at(now)
                    .ok_or(Error::UnknownPolicyVersion)?
                    .version
            }
        };
        let key = self.data_key_for_write(user).await?;
        let id = RecordId::generate(&*inner.rng).map_err(|_| Error::Random)?;
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(personal).map_err(|_| Error::InvalidInput("personal data"))?,
        );
        let sealed = key.seal(user, id, &plain, &*inner.rng)?;
        let body = RecordBody {
            id,
            user,
            kind: event.kind,
            purpose: purpose.id().clone(),
            policy_version,
            basis: event.basis.unwrap_or(purpose.basis()),
            application: event.source.application.clone(),
            channel: event.source.channel.clone(),
            text_hash: event.source.text_hash,
            at: now,
            expires_at: event.expires_at,
            sealed,
        };
        let stored = inner.store.append(body).await.map_err(map_append);
        // Evicted also after a failure: the append may have committed before the error.
        inner.cache.invalidate(user);
        Ok(ConsentRecord {
            record: stored?,
            personal: Personal::Open(event.personal),
        })
    }

    /// Records a grant of `purpose` from `source`.
    ///
    /// # Errors
    ///
    /// As [`record`](Self::record).
    pub async fn grant(
        &self,
        user: UserId,
        purpose: &str,
        source: Source,
    ) -> Result<ConsentRecord, Error> {
        self.record(user, ConsentEvent::grant(purpose)?.source(source))
            .await
    }

    /// Records a withdrawal of `purpose` from `source`.
    ///
    /// # Errors
    ///
    /// As [`record`](Self::record).
    pub async fn withdraw(
        &self,
        user: UserId,
        purpose: &str,
        source: Source,
    ) -> Result<ConsentRecord, Error> {
        self.record(user, ConsentEvent::withdraw(purpose)?.source(source))
            .await
    }

    async fn data_key_for_write(&self, user: UserId) -> Result<DataKey, Error> {
        let inner = &self.inner;
        let wrapped = match inner.store.data_key(user).await? {
            KeyState::Present(w) => w,
            KeyState::Erased(_) => return Err(Error::Erased),
            KeyState::Absent => {
                let candidate = inner.master.new_wrapped_key(user, &*inner.rng)?;
                match inner
                    .store
                    .insert_data_key(user, &candidate, inner.clock.now())
                    .await?
                {
                    KeyState::Present(w) => w,
                    KeyState::Erased(_) => return Err(Error::Erased),
                    KeyState::Absent => return Err(Error::Corrupt("data key not stored")),
                }
            }
        };
        inner.master.unwrap_key(user, &wrapped)
    }

    /// The user's records, oldest first, with their personal parts opened (or
    /// [`Personal::Erased`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]; [`Error::Corrupt`] when a record does not open with the user's key.
    pub async fn history(&self, user: UserId) -> Result<Vec<ConsentRecord>, Error> {
        let inner = &self.inner;
        let records = inner.store.subject_records(user).await?;
        let key = match inner.store.data_key(user).await? {
            KeyState::Present(w) => Some(inner.master.unwrap_key(user, &w)?),
            KeyState::Absent | KeyState::Erased(_) => None,
        };
        records
            .into_iter()
            .map(|record| {
                let personal = match &key {
                    Some(k) => Personal::Open(open_personal(k, &record)?),
                    None => Personal::Erased,
                };
                Ok(ConsentRecord { record, personal })
            })
            .collect()
    }

    /// The cached decision for `user` and `purpose`, without touching the store: `None` when
    /// nothing fresh is cached. For synchronous hot paths; [`check`](Self::check) falls back
    /// to the store.
    pub fn check_cached(&self, user: UserId, purpose: &str) -> Option<Decision> {
        self.inner.cache.get(user, purpose, self.inner.clock.now())
    }

    /// May `purpose` be used for `user` now? Allow or deny with the record (or, for bases
    /// other than consent, the basis) that justifies the answer. Served from the in-process
    /// cache when fresh (see [`crate::cache`]); otherwise one read of the user's records
    /// decides every purpose of the user and caches them.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPurpose`], [`Error::Store`].
    pub async fn check(&self, user: UserId, purpose: &str) -> Result<Decision, Error> {
        if let Some(d) = self.check_cached(user, purpose) {
            return Ok(d);
        }
        let inner = &self.inner;
        if inner.catalog.get(purpose).is_none() {
            return Err(Error::UnknownPurpose);
        }
        let generation = inner.cache.generation();
        let erased_at = match inner.store.data_key(user).await? {
            KeyState::Erased(at) => Some(at),
            KeyState::Absent | KeyState::Present(_) => None,
        };
        let records = inner.store.subject_records(user).await?;
        let now = inner.clock.now();
        let until = now + inner.cache_ttl;
        let mut decisions = HashMap::new();
        let mut answer = None;
        for p in inner.catalog.purposes() {
            let (d, expires) = decision::decide(p, &records, now, erased_at);
            if p.id().as_str() == purpose {
                answer = Some(d);
            }
            let until = expires.map_or(until, |e| e.min(until));
            decisions.insert(p.id().as_str().to_owned(), Cached { decision: d, until });
        }
        inner.cache.insert(user, until, decisions, generation);
        answer.ok_or(Error::UnknownPurpose)
    }

    /// Evicts `user`'s cached decisions; call it when another process reports a change (for
    /// example from the outbox events it relays).
    pub fn invalidate(&self, user: UserId) {
        self.inner.cache.invalidate(user);
    }

    /// Evicts every cached decision.
    pub fn invalidate_all(&self) {
        self.inner.cache.clear();
    }

    /// How many users have cached decisions.
    pub fn cached_subjects(&self) -> usize {
        self.inner.cache.len()
    }

    /// Was `purpose` permitted for `user` at `at`, and under which policy version? Answers
    /// from the records written by then, with the justifying record as proof after checking
    /// the user's chain up to it.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPurpose`], [`Error::Chain`] when the user's chain does not verify,
    /// [`Error::Store`].
    pub async fn was_permitted(
        &self,
        user: UserId,
        purpose: &str,
        at: OffsetDateTime,
    ) -> Result<Permission, Error> {
        let inner = &self.inner;
        let p = inner.catalog.get(purpose).ok_or(Error::UnknownPurpose)?;
        let erased_at = match inner.store.data_key(user).await? {
            KeyState::Erased(t) => Some(t),
            KeyState::Absent | KeyState::Present(_) => None,
        };
        let records = inner.store.subject_records(user).await?;
        let (d, _) = decision::decide(p, &records, at, erased_at);
        let proof = match d.record() {
            Some(r) => {
                let upto: Vec<StoredRecord> = records
                    .iter()
                    .take_while(|x| x.subject_seq <= r.subject_seq)
                    .cloned()
                    .collect();
                verify_subject(&upto)?;
                upto.into_iter().last()
            }
            None => None,
        };
        Ok(Permission {
            decision: d,
            policy_in_force: inner.catalog.policy_at(at).map(|p| p.version),
            policy_version: proof.as_ref().map(|r| r.body.policy_version),
            proof,
        })
    }

    /// The purposes whose consent predates the newest material policy change in force (or
    /// whose latest record requires re-consent): what the sign-in should ask again.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn needs_reconsent(&self, user: UserId) -> Result<Vec<ReconsentNeeded>, Error> {
        let inner = &self.inner;
        if matches!(inner.store.data_key(user).await?, KeyState::Erased(_)) {
            return Ok(Vec::new());
        }
        let records = inner.store.subject_records(user).await?;
        let now = inner.clock.now();
        let purposes: Vec<_> = inner.catalog.purposes().collect();
        Ok(decision::needs_reconsent(
            &purposes,
            &records,
            now,
            inner.catalog.last_material_at(now),
        ))
    }

    /// Records a re-consent requirement for every purpose [`needs_reconsent`] lists that is
    /// still granted, so that [`check`](Self::check) denies them until the user answers.
    ///
    /// [`needs_reconsent`]: Self::needs_reconsent
    ///
    /// # Errors
    ///
    /// As [`record`](Self::record).
    pub async fn require_reconsent(
        &self,
        user: UserId,
        source: Source,
    ) -> Result<Vec<ConsentRecord>, Error> {
        let mut out = Vec::new();
        for item in self.needs_reconsent(user).await? {
            if item.record.kind != EventKind::Granted {
                continue;
            }
            let event = ConsentEvent::new(EventKind::ReconsentRequired, item.purpose.as_str())?
                .source(source.clone())
                .policy_version(item.material_version);
            out.push(self.record(user, event).await?);
        }
        Ok(out)
    }

    /// Applies a Global Privacy Control (do-not-sell-or-share) signal: records a withdrawal
    /// for every sale-or-share purpose currently permitted on the consent or
    /// legitimate-interest basis. Idempotent: a purpose already denied gets no new record, so
    /// calling it on every request carrying `Sec-GPC: 1` writes once.
    ///
    /// # Errors
    ///
    /// As [`record`](Self::record).
    pub async fn apply_gpc(
        &self,
        user: UserId,
        source: Source,
    ) -> Result<Vec<ConsentRecord>, Error> {
        let targets: Vec<_> = self
            .inner
            .catalog
            .purposes()
            .filter(|p| {
                p.is_sale_or_share()
                    && matches!(
                        p.basis(),
                        LegalBasis::Consent | LegalBasis::LegitimateInterest
                    )
            })
            .map(|p| p.id().clone())
            .collect();
        let mut out = Vec::new();
        for id in targets {
            if self.check(user, id.as_str()).await?.is_allowed() {
                let event = ConsentEvent::withdraw(id.as_str())?
                    .source(source.clone())
                    .attribute("signal", "gpc");
                out.push(self.record(user, event).await?);
            }
        }
        Ok(out)
    }

    /// Erases the user from the ledger by destroying their data key (crypto-shredding): the
    /// records stay, every chain still verifies, the personal parts no longer open, no record
    /// can be added and every check denies with [`Denied::Erased`](crate::Denied::Erased).
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn erase_subject(&self, user: UserId) -> Result<(), Error> {
        let result = self
            .inner
            .store
            .erase_data_key(user, self.inner.clock.now())
            .await;
        self.inner.cache.invalidate(user);
        Ok(result?)
    }

    /// Verifies the whole ledger: every record's hash, the global chain and every subject's
    /// chain. Returns the head.
    ///
    /// # Errors
    ///
    /// [`Error::Chain`] naming the first bad record; [`Error::Store`].
    pub async fn verify(&self) -> Result<ChainHead, Error> {
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = self.inner.store.records_after(after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                verifier.push(r)?;
            }
        }
        Ok(verifier.head())
    }

    /// Verifies the ledger and signs its head as an anchor (see [`crate::anchor`]).
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify); [`Error::InvalidKey`].
    pub async fn sign_anchor(&self, key: &SigningKey) -> Result<String, Error> {
        let head = self.verify().await?;
        Anchor::new(head, self.inner.clock.now()).sign(key)
    }

    /// Checks the ledger against an earlier signed anchor: the signature, the whole chain,
    /// and that the anchored position still holds the anchored record.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`], [`Error::Chain`], [`Error::Rewritten`], [`Error::Truncated`],
    /// [`Error::Store`].
    pub async fn verify_against_anchor(
        &self,
        anchor: &str,
        key: &PublicJwk,
    ) -> Result<ChainHead, Error> {
        let anchor = verify_anchor(anchor, key)?;
        let mut check = AnchorCheck::new(anchor);
        let mut after = 0;
        loop {
            let page = self.inner.store.records_after(after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                check.push(r)?;
            }
        }
        check.finish()
    }

    /// A signed Kantara consent receipt for one of `user`'s records.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the record does not exist or is another user's;
    /// [`Error::Erased`] when the user was erased; [`Error::Store`], [`Error::InvalidKey`].
    pub async fn receipt(
        &self,
        user: UserId,
        record: RecordId,
        config: &ReceiptConfig,
        key: &SigningKey,
    ) -> Result<String, Error> {
        let inner = &self.inner;
        let stored = inner
            .store
            .record(record)
            .await?
            .filter(|r| r.body.user == user)
            .ok_or(Error::NotFound)?;
        let data_key = match inner.store.data_key(user).await? {
            KeyState::Present(w) => inner.master.unwrap_key(user, &w)?,
            KeyState::Absent | KeyState::Erased(_) => return Err(Error::Erased),
        };
        let personal = open_personal(&data_key, &stored)?;
        let purpose = inner
            .catalog
            .get(stored.body.purpose.as_str())
            .ok_or(Error::UnknownPurpose)?;
        let b = &stored.body;
        let policy_url = inner
            .catalog
            .policy_version(b.policy_version)
            .map(|p| p.url.clone())
            .unwrap_or_default();
        let termination = if purpose.termination_text().is_empty() {
            b.expires_at
                .map(|e| format!("expires at Unix time {}", e.unix_timestamp()))
                .unwrap_or_else(|| "until withdrawn".to_owned())
        } else {
            purpose.termination_text().to_owned()
        };
        let third = purpose.third_parties();
        let receipt = ConsentReceipt {
            version: KANTARA_VERSION.to_owned(),
            jurisdiction: personal
                .jurisdiction
                .clone()
                .unwrap_or_else(|| config.jurisdiction.clone()),
            consent_timestamp: b.at.unix_timestamp(),
            collection_method: if b.application.is_empty() {
                b.channel.clone()
            } else {
                format!("{} ({})", b.channel, b.application)
            },
            consent_receipt_id: b.id.to_string(),
            public_key: key.public_jwk().x.clone(),
            language: personal
                .language
                .clone()
                .unwrap_or_else(|| config.language.clone()),
            pii_principal_id: user.to_string(),
            pii_controllers: config.controllers.clone(),
            policy_url,
            services: vec![Service {
                service: config.service.clone(),
                purposes: vec![ReceiptPurpose {
                    purpose: purpose.description().to_owned(),
                    purpose_category: if purpose.purpose_category().is_empty() {
                        Vec::new()
                    } else {
                        vec![purpose.purpose_category().to_owned()]
                    },
                    consent_type: if b.basis == LegalBasis::Consent {
                        "EXPLICIT".to_owned()
                    } else {
                        "IMPLICIT".to_owned()
                    },
                    pii_category: purpose.data_category_list().to_vec(),
                    primary_purpose: purpose.is_required(),
                    termination,
                    third_party_disclosure: !third.is_empty(),
                    third_party_name: (!third.is_empty()).then(|| third.join(", ")),
                }],
            }],
            sensitive: !purpose.sensitive_categories().is_empty(),
            spi_cat: purpose.sensitive_categories().to_vec(),
            ciam: LedgerLink {
                purpose_id: b.purpose.to_string(),
                event: b.kind.as_str().to_owned(),
                legal_basis: b.basis.as_str().to_owned(),
                policy_version: b.policy_version,
                text_hash: b.text_hash.map(|h| hex(&h)),
                seq: stored.seq,
                subject_seq: stored.subject_seq,
                record_hash: stored.hash.to_string(),
                expires_at: b.expires_at.map(OffsetDateTime::unix_timestamp),
            },
        };
        receipt.sign(key)
    }
}

fn open_personal(key: &DataKey, record: &StoredRecord) -> Result<PersonalData, Error> {
    let plain = key
        .open(record.body.user, record.body.id, &record.body.sealed)
        .ok_or(Error::Corrupt("a record's personal data does not open"))?;
    serde_json::from_slice(&plain).map_err(|_| Error::Corrupt("a record's personal data"))
}
