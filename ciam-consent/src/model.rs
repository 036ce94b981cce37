//! Purposes, policy documents and consent events: what the ledger records.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;

/// Longest purpose id accepted.
pub const MAX_PURPOSE_ID: usize = 64;

/// Identifies a purpose of processing: 1 to 64 characters of `a-z`, `0-9`, `_`, `-`, `.`
/// (for example `marketing.email`). Stable: it is written into every record.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PurposeId(String);

impl PurposeId {
    /// Parses a purpose id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `s` is empty, too long or has other characters.
    pub fn new(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_PURPOSE_ID
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidInput("purpose id"))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PurposeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PurposeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TryFrom<String> for PurposeId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(&s)
    }
}

impl From<PurposeId> for String {
    fn from(p: PurposeId) -> String {
        p.0
    }
}

impl FromStr for PurposeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

/// The lawful basis for processing (GDPR Article 6(1) (a) to (f)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// (a) the data subject has given consent.
    Consent,
    /// (b) necessary for a contract with the data subject.
    Contract,
    /// (f) the controller's legitimate interests (the subject may object).
    LegitimateInterest,
    /// (c) a legal obligation of the controller.
    LegalObligation,
    /// (d) the vital interests of the data subject or another person.
    VitalInterest,
    /// (e) a task in the public interest or official authority.
    PublicTask,
}

impl LegalBasis {
    /// The stable text form (`consent`, `contract`, `legitimate_interest`, `legal_obligation`,
    /// `vital_interest`, `public_task`), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Contract => "contract",
            Self::LegitimateInterest => "legitimate_interest",
            Self::LegalObligation => "legal_obligation",
            Self::VitalInterest => "vital_interest",
            Self::PublicTask => "public_task",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "consent" => Self::Consent,
            "contract" => Self::Contract,
            "legitimate_interest" => Self::LegitimateInterest,
            "legal_obligation" => Self::LegalObligation,
            "vital_interest" => Self::VitalInterest,
            "public_task" => Self::PublicTask,
            _ => return None,
        })
    }
}

/// A purpose of processing, as the application declares it.
///
/// ```
/// use ciam_consent::{LegalBasis, Purpose};
///
/// let ads = Purpose::new("ads.personalised", "Personalised advertising", LegalBasis::Consent)
///     .unwrap()
///     .data_categories(["browsing history", "device identifiers"])
///     .sale_or_share(true)
///     .third_party("Example Ad Network");
/// assert!(ads.is_sale_or_share());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    id: PurposeId,
    description: String,
    basis: LegalBasis,
    required: bool,
    data_categories: Vec<String>,
    sale_or_share: bool,
    category: String,
    third_parties: Vec<String>,
    termination: String,
    sensitive_categories: Vec<String>,
}

impl Purpose {
    /// A purpose with an id (see [`PurposeId`]), a description shown to users and its basis.
    /// Optional, no data categories, not sale-or-share.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id.
    pub fn new(id: &str, description: &str, basis: LegalBasis) -> Result<Self, Error> {
        Ok(Self {
            id: PurposeId::new(id)?,
            description: description.to_owned(),
            basis,
            required: false,
            data_categories: Vec::new(),
            sale_or_share: false,
            category: String::new(),
            third_parties: Vec::new(),
            termination: String::new(),
            sensitive_categories: Vec::new(),
        })
    }

    /// Marks the purpose as required to use the service (it cannot be declined).
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The categories of personal data processed (Kantara `piiCategory`).
    pub fn data_categories<I, S>(mut self, categories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.data_categories = categories.into_iter().map(Into::into).collect();
        self
    }

    /// Marks the purpose as a "sale or share" of personal data (CCPA/CPRA): a Global Privacy
    /// Control signal withdraws it.
    pub fn sale_or_share(mut self, yes: bool) -> Self {
        self.sale_or_share = yes;
        self
    }

    /// The purpose category shown on receipts (Kantara `purposeCategory`, e.g. `6 - Marketing`).
    pub fn category(mut self, category: &str) -> Self {
        self.category = category.to_owned();
        self
    }

    /// Adds a third party the data is disclosed to.
    pub fn third_party(mut self, name: &str) -> Self {
        self.third_parties.push(name.to_owned());
        self
    }

    /// When processing for this purpose ends (Kantara `termination`).
    pub fn termination(mut self, termination: &str) -> Self {
        self.termination = termination.to_owned();
        self
    }

    /// Adds a category of sensitive data (Kantara `spiCat`).
    pub fn sensitive_category(mut self, category: &str) -> Self {
        self.sensitive_categories.push(category.to_owned());
        self
    }

    /// The id.
    pub fn id(&self) -> &PurposeId {
        &self.id
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The legal basis.
    pub fn basis(&self) -> LegalBasis {
        self.basis
    }

    /// Whether the purpose is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The data categories.
    pub fn data_category_list(&self) -> &[String] {
        &self.data_categories
    }

    /// Whether this is a sale-or-share purpose.
    pub fn is_sale_or_share(&self) -> bool {
        self.sale_or_share
    }

    /// The receipt purpose category (empty when not set).
    pub fn purpose_category(&self) -> &str {
        &self.category
    }

    /// Third parties the data is disclosed to.
    pub fn third_parties(&self) -> &[String] {
        &self.third_parties
    }

    /// The termination text (empty when not set).
    pub fn termination_text(&self) -> &str {
        &self.termination
    }

    /// The sensitive data categories.
    pub fn sensitive_categories(&self) -> &[String] {
        &self.sensitive_categories
    }
}

/// One version of the privacy policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// Version number, increasing.
    pub version: u32,
    /// SHA-256 of the exact text published.
    pub content_hash: [u8; 32],
    /// From when the version applies.
    #[serde(with = "time::serde::rfc3339")]
    pub effective_from: OffsetDateTime,
    /// Whether the change from the previous version is material: consent given under an
    /// earlier version must then be asked again ([`ConsentLedger::needs_reconsent`]).
    ///
    /// [`ConsentLedger::needs_reconsent`]: crate::ConsentLedger::needs_reconsent
    pub material: bool,
    /// Where the text is published (Kantara `policyUrl`).
    pub url: String,
}

impl PolicyDocument {
    /// A version whose text is `text` (hashed here), effective from `effective_from`.
    pub fn new(version: u32, text: &[u8], effective_from: OffsetDateTime, url: &str) -> Self {
        Self {
            version,
            content_hash: crate::chain::sha256(text),
            effective_from,
            material: false,
            url: url.to_owned(),
        }
    }

    /// Marks the change as material.
    pub fn material(mut self, material: bool) -> Self {
        self.material = material;
        self
    }
}

/// The purposes and policy versions the application declares; given to the ledger at build
/// time (they are configuration, versioned with the application, not stored).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    purposes: BTreeMap<PurposeId, Purpose>,
    policies: Vec<PolicyDocument>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a purpose (replacing one with the same id).
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purposes.insert(purpose.id.clone(), purpose);
        self
    }

    /// Adds a policy version.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when its version or effective date is not after the last one's.
    pub fn policy(mut self, policy: PolicyDocument) -> Result<Self, Error> {
        if let Some(last) = self.policies.last()
            && (policy.version <= last.version || policy.effective_from < last.effective_from)
        {
            return Err(Error::InvalidInput(
                "policy versions and effective dates must increase",
            ));
        }
        self.policies.push(policy);
        Ok(self)
    }

    /// A purpose by id.
    pub fn get(&self, id: &str) -> Option<&Purpose> {
        self.purposes.get(id)
    }

    /// Every purpose, ordered by id.
    pub fn purposes(&self) -> impl Iterator<Item = &Purpose> {
        self.purposes.values()
    }

    /// Every policy version, oldest first.
    pub fn policies(&self) -> &[PolicyDocument] {
        &self.policies
    }

    /// The policy version in force at `at` (the newest effective by then).
    pub fn policy_at(&self, at: OffsetDateTime) -> Option<&PolicyDocument> {
        self.policies.iter().rev().find(|p| p.effective_from <= at)
    }

    /// A policy by version.
    pub fn policy_version(&self, version: u32) -> Option<&PolicyDocument> {
        self.policies.iter().find(|p| p.version == version)
    }

    /// The newest material version in force at `at`.
    pub fn last_material_at(&self, at: OffsetDateTime) -> Option<&PolicyDocument> {
        self.policies
            .iter()
            .rev()
            .find(|p| p.material && p.effective_from <= at)
    }
}

impl std::borrow::Borrow<str> for PurposeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// What happened to a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The subject gave consent (or, for legitimate interest, stopped objecting).
    Granted,
    /// The subject withdrew consent or objected (including a Global Privacy Control signal).
    Withdrawn,
    /// The consent ran out.
    Expired,
    /// The consent must be asked again (a material policy change).
    ReconsentRequired,
}

impl EventKind {
    /// The stable text form, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
            Self::ReconsentRequired => "reconsent_required",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "granted" => Self::Granted,
            "withdrawn" => Self::Withdrawn,
            "expired" => Self::Expired,
            "reconsent_required" => Self::ReconsentRequired,
            _ => return None,
        })
    }
}

/// Where a consent event came from. Not personal data: stored in the clear and hashed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Source {
    /// The application that collected it (e.g. `web`, `ios`, `crm`).
    pub application: String,
    /// The channel or method (e.g. `signup-form`, `privacy-centre`, `gpc-header`); Kantara's
    /// `collectionMethod`.
    pub channel: String,
    /// SHA-256 of the exact text shown to the subject, when there was one.
    pub text_hash: Option<[u8; 32]>,
}

impl Source {
    /// A source with application and channel and no text.
    pub fn new(application: &str, channel: &str) -> Self {
        Self {
            application: application.to_owned(),
            channel: channel.to_owned(),
            text_hash: None,
        }
    }

    /// Records the SHA-256 of the text shown.
    pub fn text_shown(mut self, text: &[u8]) -> Self {
        self.text_hash = Some(crate::chain::sha256(text));
        self
    }
}

/// The personal part of a record: sealed with the subject's data key, unreadable once the
/// subject is erased.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersonalData {
    /// The jurisdiction the subject was in (e.g. `DE`, `US-CA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// The language the text was shown in (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Anything else the application wants kept with the record (IP address, user agent…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// A consent event to record.
///
/// ```
/// use ciam_consent::{ConsentEvent, Source};
/// use time::{Duration, macros::datetime};
///
/// let event = ConsentEvent::grant("newsletter")
///     .unwrap()
///     .source(Source::new("web", "signup-form").text_shown(b"Send me the newsletter"))
///     .jurisdiction("DE")
///     .expires_at(datetime!(2027-01-01 00:00 UTC));
/// # let _ = event;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    pub(crate) purpose: PurposeId,
    pub(crate) kind: EventKind,
    pub(crate) policy_version: Option<u32>,
    pub(crate) source: Source,
    pub(crate) basis: Option<LegalBasis>,
    pub(crate) personal: PersonalData,
    pub(crate) expires_at: Option<OffsetDateTime>,
}

impl ConsentEvent {
    /// An event of `kind` for `purpose`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed purpose id.
    pub fn new(kind: EventKind, purpose: &str) -> Result<Self, Error> {
        Ok(Self {
            purpose: PurposeId::new(purpose)?,
            kind,
            policy_version: None,
            source: Source::default(),
            basis: None,
            personal: PersonalData::default(),
            expires_at: None,
        })
    }

    /// A grant.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn grant(purpose: &str) -> Result<Self, Error> {
        Self::new(EventKind::Granted, purpose)
    }

    /// A withdrawal.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn withdraw(purpose: &str) -> Result<Self, Error> {
        Self::new(EventKind::Withdrawn, purpose)
    }

    /// The policy version shown (default: the version in force when recorded).
    pub fn policy_version(mut self, version: u32) -> Self {
        self.policy_version = Some(version);
        self
    }

    /// Where the event came from.
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// The legal basis (default: the purpose's).
    pub fn basis(mut self, basis: LegalBasis) -> Self {
        self.basis = Some(basis);
        self
    }

    /// The subject's jurisdiction (sealed).
    pub fn jurisdiction(mut self, jurisdiction: &str) -> Self {
        self.personal.jurisdiction = Some(jurisdiction.to_owned());
        self
    }

    /// The language of the text shown (sealed).
    pub fn language(mut self, language: &str) -> Self {
        self.personal.language = Some(language.to_owned());
        self
    }

    /// A free-form personal attribute (sealed).
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.personal
            .attributes
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// When a grant stops counting.
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }
}
