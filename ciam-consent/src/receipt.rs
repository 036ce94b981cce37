//! Signed, machine-readable consent receipts.
//!
//! A receipt is a compact JWS (`typ` `ciam-consent-receipt+jwt`, `alg` `EdDSA`, RFC 8037)
//! whose claims are a Kantara Initiative Consent Receipt (specification v1.1.0) for one
//! ledger record, plus a `ciam` member tying it to the ledger (record hash and positions),
//! so a receipt can be checked against the ledger as well as against the key. Anyone holding
//! the published [`PublicJwk`] verifies it offline with [`verify_receipt`].
//!
//! # Kantara fields
//!
//! | Kantara v1.1 field | Filled from |
//! |---|---|
//! | `version` | `KI-CR-v1.1.0` |
//! | `jurisdiction` | the record's sealed jurisdiction, else [`ReceiptConfig::jurisdiction`] |
//! | `consentTimestamp` | the record's time, Unix seconds |
//! | `collectionMethod` | the record's source channel (and application) |
//! | `consentReceiptID` | the record id (`cns_…`) |
//! | `publicKey` | the signing key's public key (base64url, the JWK `x`) |
//! | `language` | the record's sealed language, else [`ReceiptConfig::language`] |
//! | `piiPrincipalId` | the user id (pseudonymous) |
//! | `piiControllers` | [`ReceiptConfig::controllers`] (`piiController`, `contact`, `address`, `email`, `phone`, `piiControllerUrl`) |
//! | `policyUrl` | the URL of the policy version the record was given under |
//! | `services[].service` | [`ReceiptConfig::service`] |
//! | `services[].purposes[].purpose` | the purpose's description |
//! | `purposeCategory` | the purpose's category |
//! | `consentType` | `EXPLICIT` for the consent basis, `IMPLICIT` otherwise |
//! | `piiCategory` | the purpose's data categories |
//! | `primaryPurpose` | whether the purpose is required |
//! | `termination` | the purpose's termination text, or the grant's expiry |
//! | `thirdPartyDisclosure`, `thirdPartyName` | the purpose's third parties |
//! | `sensitive`, `spiCat` | the purpose's sensitive categories |
//!
//! # ISO/IEC TS 27560 mapping
//!
//! [`ConsentReceipt::to_iso27560`] renders the same facts in the four sections of the
//! ISO/IEC TS 27560:2023 consent record (clause 6.3). The member names below follow the
//! clauses' element descriptions (the normative text is not freely available; DPV's
//! `dpv-27560` profile uses the same structure):
//!
//! | 27560 section (clause) | element | from |
//! |---|---|---|
//! | record header (6.3.3) | `recordId` | `consentReceiptID` |
//! | | `schemaVersion` | `ISO/IEC TS 27560:2023` |
//! | | `piiPrincipalId` | `piiPrincipalId` |
//! | | `recordHash`, `ledgerPosition` | the `ciam` member |
//! | PII processing (6.3.4) | `purposes[].purpose`, `purposeCategory` | `purpose`, `purposeCategory` |
//! | | `purposes[].lawfulBasis` | `ciam.legalBasis` |
//! | | `purposes[].piiCategories`, `sensitive`, `specialCategories` | `piiCategory`, `sensitive`, `spiCat` |
//! | | `purposes[].recipients` | `thirdPartyName` |
//! | | `purposes[].duration` | `termination` |
//! | | `notice` (`url`, `version`, `textHash`) | `policyUrl`, `ciam.policyVersion`, `ciam.textHash` |
//! | party identification (6.3.6) | `controllers` | `piiControllers` |
//! | event (6.3.7) | `eventTime` | `consentTimestamp` |
//! | | `eventType` | `ciam.event` (`given`, `withdrawn`, `expired`, `reconsent_required`) |
//! | | `collectionMethod`, `jurisdiction`, `language` | the same Kantara fields |
//! | | `validity` | `ciam.expiresAt` |

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keys::{PublicJwk, SigningKey};

/// The JWS `typ` of a receipt.
pub const RECEIPT_TYP: &str = "ciam-consent-receipt+jwt";
/// The Kantara version string.
pub const KANTARA_VERSION: &str = "KI-CR-v1.1.0";

/// What receipts say about the controller, given by the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptConfig {
    /// The controllers (at least one).
    pub controllers: Vec<PiiController>,
    /// The service the purposes belong to.
    pub service: String,
    /// Jurisdiction when the record has none.
    pub jurisdiction: String,
    /// Language when the record has none.
    pub language: String,
}

/// A PII controller (Kantara `piiControllers[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PiiController {
    /// Name.
    pub pii_controller: String,
    /// Contact person or role.
    pub contact: String,
    /// Postal address.
    pub address: Address,
    /// Contact e-mail.
    pub email: String,
    /// Contact phone.
    pub phone: String,
    /// Web site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_controller_url: Option<String>,
}

/// A postal address (schema.org style, as in the Kantara examples).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Street.
    pub street_address: String,
    /// Country.
    pub address_country: String,
}

/// A Kantara Consent Receipt v1.1 with ciam's ledger link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentReceipt {
    /// `KI-CR-v1.1.0`.
    pub version: String,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Unix seconds.
    pub consent_timestamp: i64,
    /// How consent was collected.
    pub collection_method: String,
    /// The receipt (record) id.
    #[serde(rename = "consentReceiptID")]
    pub consent_receipt_id: String,
    /// The signer's public key (base64url).
    pub public_key: String,
    /// Language.
    pub language: String,
    /// The subject.
    pub pii_principal_id: String,
    /// Controllers.
    pub pii_controllers: Vec<PiiController>,
    /// The policy.
    pub policy_url: String,
    /// Services and their purposes.
    pub services: Vec<Service>,
    /// Whether sensitive data is involved.
    pub sensitive: bool,
    /// Sensitive categories.
    pub spi_cat: Vec<String>,
    /// The ledger link.
    pub ciam: LedgerLink,
}

/// A service (Kantara `services[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Name.
    pub service: String,
    /// Purposes.
    pub purposes: Vec<ReceiptPurpose>,
}

/// A purpose (Kantara `services[].purposes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPurpose {
    /// Description.
    pub purpose: String,
    /// Categories.
    pub purpose_category: Vec<String>,
    /// `EXPLICIT` or `IMPLICIT`.
    pub consent_type: String,
    /// Data categories.
    pub pii_category: Vec<String>,
    /// Whether the purpose is required.
    pub primary_purpose: bool,
    /// When processing ends.
    pub termination: String,
    /// Whether data goes to third parties.
    pub third_party_disclosure: bool,
    /// The third parties, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_name: Option<String>,
}

/// How a receipt ties to the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerLink {
    /// The purpose id.
    pub purpose_id: String,
    /// `granted`, `withdrawn`, `expired`, `reconsent_required`.
    pub event: String,
    /// The legal basis.
    pub legal_basis: String,
    /// The policy version.
    pub policy_version: u32,
    /// SHA-256 of the text shown, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_hash: Option<String>,
    /// Global position.
    pub seq: u64,
    /// Subject position.
    pub subject_seq: u64,
    /// The record's chain hash.
    pub record_hash: String,
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl ConsentReceipt {
    /// Signs the receipt.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when signing fails.
    pub fn sign(&self, key: &SigningKey) -> Result<String, Error> {
        key.sign(RECEIPT_TYP, self)
    }

    /// The receipt as an ISO/IEC TS 27560 consent record (see the module documentation for
    /// the mapping).
    pub fn to_iso27560(&self) -> serde_json::Value {
        let purposes: Vec<serde_json::Value> = self
            .services
            .iter()
            .flat_map(|s| s.purposes.iter())
            .map(|p| {
                serde_json::json!({
                    "purpose": p.purpose,
                    "purposeCategory": p.purpose_category,
                    "lawfulBasis": self.ciam.legal_basis,
                    "piiCategories": p.pii_category,
                    "sensitive": self.sensitive,
                    "specialCategories": self.spi_cat,
                    "recipients": p.third_party_name,
                    "duration": p.termination,
                    "primaryPurpose": p.primary_purpose,
                })
            })
            .collect();
        let event_type = match self.ciam.event.as_str() {
            "granted" => "given",
            other => other,
        };
        serde_json::json!({
            "header": {
                "recordId": self.consent_receipt_id,
                "schemaVersion": "ISO/IEC TS 27560:2023",
                "piiPrincipalId": self.pii_principal_id,
                "recordHash": self.ciam.record_hash,
                "ledgerPosition": { "seq": self.ciam.seq, "subjectSeq": self.ciam.subject_seq },
            },
            "processing": {
                "purposes": purposes,
                "notice": {
                    "url": self.policy_url,
                    "version": self.ciam.policy_version,
                    "textHash": self.ciam.text_hash,
                },
            },
            "parties": { "controllers": self.pii_controllers },
            "events": [{
                "eventTime": self.consent_timestamp,
                "eventType": event_type,
                "collectionMethod": self.collection_method,
                "jurisdiction": self.jurisdiction,
                "language": self.language,
                "validity": self.ciam.expires_at,
            }],
        })
    }
}

/// Verifies a receipt offline with the published key and returns it.
///
/// # Errors
///
/// [`Error::BadSignature`] when the token is malformed, of another type, not signed by `key`,
/// or when its `publicKey` is not `key`'s.
pub fn verify_receipt(token: &str, key: &PublicJwk) -> Result<ConsentReceipt, Error> {
    let receipt: ConsentReceipt = key.verify(token, RECEIPT_TYP)?;
    if receipt.public_key != key.x || receipt.version != KANTARA_VERSION {
        return Err(Error::BadSignature);
    }
    Ok(receipt)
}
