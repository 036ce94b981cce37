//! The quickstart's consent ledger: example purposes, a versioned privacy policy, the ledger
//! on the site's database, the sign-in gate and the privacy-centre endpoints.
//!
//! | setting | effect |
//! |---|---|
//! | `CIAM_CONSENT_KEY` | 64 hex characters: the master key wrapping each user's consent data key (unset: the development key in `quickstart-keys.json`, see `dev_keys`) |
//! | `CIAM_RECEIPT_KEY` | 64 hex characters: the Ed25519 seed receipts are signed with (unset: the development key in `quickstart-keys.json`) |
//! | `CIAM_POLICY_VERSION` | the privacy policy in force (default 1); every version after 1 is a material change, so raising it makes the next sign-in ask again for consents given under an older one |

use std::sync::Arc;

use ciam::axum::Privacy;
use ciam::consent::postgres::PostgresConsentStore;
use ciam::consent::privacy::LedgerPrivacy;
use ciam::consent::receipt::{Address, PiiController};
use ciam::consent::sqlite::SqliteConsentStore;
use ciam::consent::{
    Catalog, ConsentLedger, ConsentStore, LedgerGate, LegalBasis, MasterKey, PolicyDocument,
    Purpose, ReceiptConfig, SigningKey, Source,
};
use time::OffsetDateTime;

use crate::chain;

/// The application named in every consent record the site writes.
pub(crate) const APPLICATION: &str = "ciam-quickstart";

/// The schema the consent tables go to on PostgreSQL (they are prefixed `consent_`).
const POSTGRES_SCHEMA: &str = "public";

/// Highest accepted `CIAM_POLICY_VERSION`.
const MAX_POLICY_VERSION: u32 = 1000;

/// The ledger, its sign-in gate and the privacy endpoints' configuration.
#[derive(Debug)]
pub(crate) struct Consent {
    pub(crate) ledger: ConsentLedger,
    pub(crate) privacy: Privacy,
}

impl Consent {
    /// The ledger's export section and erasure hook, to register with the engine.
    pub(crate) fn privacy_hooks(&self) -> Arc<LedgerPrivacy> {
        Arc::new(LedgerPrivacy::new(self.ledger.clone()))
    }

    /// The gate to register with the engine.
    pub(crate) fn gate(&self) -> Arc<LedgerGate> {
        Arc::new(LedgerGate::new(
            self.ledger.clone(),
            Source::new(APPLICATION, "sign-in"),
        ))
    }
}

/// The text of privacy policy `version` (what `/privacy/policy/{version}` shows; its SHA-256
/// is the version's content hash in the ledger).
pub(crate) fn policy_text(version: u32) -> String {
    let change = if version > 1 {
        " This version changes how we use your data: consents given under an earlier version are asked for again."
    } else {
        ""
    };
    format!(
        "ciam quickstart privacy policy, version {version}. We keep your account data to run your account, \
         and use it for the newsletter, analytics or partner offers only with your consent.{change}"
    )
}

/// The example purposes and policy versions 1 to `policy_version` (each after the first a
/// material change, all in force already).
pub(crate) fn catalog(policy_version: u32) -> Result<Catalog, String> {
    let purpose = |id: &str, text: &str, basis| {
        Purpose::new(id, text, basis).map_err(|e| format!("purpose {id}: {e}"))
    };
    let mut catalog = Catalog::new()
        .purpose(
            purpose(
                "newsletter",
                "Send me the monthly newsletter by e-mail.",
                LegalBasis::Consent,
            )?
            .data_categories(["e-mail address"])
            .category("marketing"),
        )
        .purpose(
            purpose(
                "analytics",
                "Measure how I use the site to improve it.",
                LegalBasis::Consent,
            )?
            .data_categories(["usage data"])
            .category("analytics"),
        )
        .purpose(
            purpose(
                "sale_of_data",
                "Share my profile with selected partners for their offers (a sale or share of personal data).",
                LegalBasis::Consent,
            )?
            .data_categories(["e-mail address", "profile"])
            .sale_or_share(true)
            .third_party("selected partners"),
        )
        .purpose(
            purpose(
                "terms",
                "Run my account under the terms of service.",
                LegalBasis::Contract,
            )?
            .required(true),
        );
    for version in 1..=policy_version {
        let doc = PolicyDocument::new(
            version,
            policy_text(version).as_bytes(),
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(i64::from(version)),
            &format!("/privacy/policy/{version}"),
        )
        .material(version > 1);
        catalog = catalog
            .policy(doc)
            .map_err(|e| format!("policy version {version}: {e}"))?;
    }
    Ok(catalog)
}

/// Opens the consent ledger on the site's database (SQLite file or PostgreSQL).
/// Reads `CIAM_CONSENT_KEY`, `CIAM_RECEIPT_KEY` and `CIAM_POLICY_VERSION`.
pub(crate) async fn open(database_url: &str) -> Result<Consent, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let consent_key = var("CIAM_CONSENT_KEY");
    let receipt_key = var("CIAM_RECEIPT_KEY");
    let policy_version = match var("CIAM_POLICY_VERSION") {
        None => 1,
        Some(t) => t
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|v| (1..=MAX_POLICY_VERSION).contains(v))
            .ok_or_else(|| {
                format!("CIAM_POLICY_VERSION must be 1 to {MAX_POLICY_VERSION}, got {t:?}")
            })?,
    };
    let master = crate::dev_keys::key("CIAM_CONSENT_KEY", consent_key.as_deref())?;
    let seed = crate::dev_keys::key("CIAM_RECEIPT_KEY", receipt_key.as_deref())?;
    let postgres =
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
    let cannot =
        |e: &dyn std::error::Error| format!("cannot open the consent ledger: {}", chain(e));
    let store: Arc<dyn ConsentStore> = if postgres {
        Arc::new(
            PostgresConsentStore::connect(database_url, POSTGRES_SCHEMA, 8)
                .await
                .map_err(|e| cannot(&e))?,
        )
    } else {
        Arc::new(
            SqliteConsentStore::connect(database_url)
                .await
                .map_err(|e| cannot(&e))?,
        )
    };
    let ledger = ConsentLedger::builder(
        store,
        catalog(policy_version)?,
        MasterKey::from_bytes(&master),
    )
    .build()
    .map_err(|e| format!("cannot build the consent ledger: {}", chain(&e)))?;
    let signing = SigningKey::from_seed(&seed).map_err(|e| format!("CIAM_RECEIPT_KEY: {e}"))?;
    let receipts = ReceiptConfig {
        controllers: vec![PiiController {
            pii_controller: "ciam quickstart".to_owned(),
            contact: "Privacy team".to_owned(),
            address: Address {
                street_address: "1 Example Street".to_owned(),
                address_country: "DE".to_owned(),
            },
            email: "privacy@localhost".to_owned(),
            phone: "+49 30 0000000".to_owned(),
            pii_controller_url: None,
        }],
        service: "ciam quickstart".to_owned(),
        jurisdiction: "DE".to_owned(),
        language: "en".to_owned(),
    };
    tracing::info!(policy_version, "consent ledger ready");
    Ok(Consent {
        privacy: Privacy::new(ledger.clone(), signing, receipts, APPLICATION),
        ledger,
    })
}
