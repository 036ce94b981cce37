//! Enforcement answers: allow or deny, and the record (or basis) behind the answer.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chain::{RecordRef, StoredRecord};
use crate::model::{EventKind, LegalBasis, PolicyDocument, Purpose, PurposeId};

/// The answer to "may purpose P be used for user U now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Processing is permitted.
    Allow(Allowed),
    /// Processing is not permitted.
    Deny(Denied),
}

impl Decision {
    /// Whether processing is permitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// The record behind the answer, if one is.
    pub fn record(&self) -> Option<&RecordRef> {
        match self {
            Self::Allow(a) => a.record.as_ref(),
            Self::Deny(d) => d.record(),
        }
    }
}

/// Why processing is permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    /// The legal basis relied on.
    pub basis: LegalBasis,
    /// The grant that justifies it: always present for [`LegalBasis::Consent`]; for
    /// legitimate interest, the last grant if the subject ever stopped objecting; absent for
    /// the other bases, which need no record.
    pub record: Option<RecordRef>,
}

/// Why processing is not permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "record", rename_all = "snake_case")]
pub enum Denied {
    /// Consent was never given.
    NoConsent,
    /// The subject withdrew consent or objected (this record).
    Withdrawn(RecordRef),
    /// The grant (or an expiry record) says it ran out.
    Expired(RecordRef),
    /// A re-consent was required after a material policy change (this record).
    ReconsentRequired(RecordRef),
    /// The subject was erased.
    Erased,
}

impl Denied {
    /// The record behind the denial, if one is.
    pub fn record(&self) -> Option<&RecordRef> {
        match self {
            Self::Withdrawn(r) | Self::Expired(r) | Self::ReconsentRequired(r) => Some(r),
            Self::NoConsent | Self::Erased => None,
        }
    }
}

/// The last record for `purpose` written at or before `at`, among a subject's records in
/// subject order.
pub(crate) fn latest<'a>(
    records: &'a [StoredRecord],
    purpose: &PurposeId,
    at: OffsetDateTime,
) -> Option<&'a StoredRecord> {
    records
        .iter()
        .rev()
        .find(|r| &r.body.purpose == purpose && r.body.at <= at)
}

/// Decides `purpose` at `at` from the subject's records; also returns until when the answer
/// holds without a new record (a grant's expiry), if it is bounded.
pub(crate) fn decide(
    purpose: &Purpose,
    records: &[StoredRecord],
    at: OffsetDateTime,
    erased_at: Option<OffsetDateTime>,
) -> (Decision, Option<OffsetDateTime>) {
    if erased_at.is_some_and(|e| e <= at) {
        return (Decision::Deny(Denied::Erased), None);
    }
    let basis = purpose.basis();
    let last = latest(records, purpose.id(), at);
    match basis {
        LegalBasis::Contract
        | LegalBasis::LegalObligation
        | LegalBasis::VitalInterest
        | LegalBasis::PublicTask => (
            Decision::Allow(Allowed {
                basis,
                record: None,
            }),
            None,
        ),
        LegalBasis::LegitimateInterest => match last {
            Some(r) if r.body.kind == EventKind::Withdrawn => {
                (Decision::Deny(Denied::Withdrawn(r.position())), None)
            }
            other => (
                Decision::Allow(Allowed {
                    basis,
                    record: other
                        .filter(|r| r.body.kind == EventKind::Granted)
                        .map(StoredRecord::position),
                }),
                None,
            ),
        },
        LegalBasis::Consent => match last {
            None => (Decision::Deny(Denied::NoConsent), None),
            Some(r) => {
                let pos = r.position();
                match r.body.kind {
                    EventKind::Granted => match r.body.expires_at {
                        Some(exp) if exp <= at => (Decision::Deny(Denied::Expired(pos)), None),
                        exp => (
                            Decision::Allow(Allowed {
                                basis,
                                record: Some(pos),
                            }),
                            exp,
                        ),
                    },
                    EventKind::Withdrawn => (Decision::Deny(Denied::Withdrawn(pos)), None),
                    EventKind::Expired => (Decision::Deny(Denied::Expired(pos)), None),
                    EventKind::ReconsentRequired => {
                        (Decision::Deny(Denied::ReconsentRequired(pos)), None)
                    }
                }
            }
        },
    }
}

/// The historical answer of [`ConsentLedger::was_permitted`](crate::ConsentLedger::was_permitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// The answer as it stood at the time asked about.
    pub decision: Decision,
    /// The policy version in force then (the catalog's), if any was.
    pub policy_in_force: Option<u32>,
    /// The policy version the justifying record was given under, if there is one.
    pub policy_version: Option<u32>,
    /// The justifying record as stored, with its chain position and links; the subject's
    /// chain up to it was verified before answering.
    pub proof: Option<StoredRecord>,
}

/// A purpose whose consent predates a material policy change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconsentNeeded {
    /// The purpose.
    pub purpose: PurposeId,
    /// The policy version the current consent was given under.
    pub consented_under: u32,
    /// The material version that requires asking again.
    pub material_version: u32,
    /// The record of the current consent (or of the re-consent requirement).
    pub record: RecordRef,
}

pub(crate) fn needs_reconsent(
    purposes: &[&Purpose],
    records: &[StoredRecord],
    now: OffsetDateTime,
    material: Option<&PolicyDocument>,
) -> Vec<ReconsentNeeded> {
    let mut out = Vec::new();
    for p in purposes {
        if p.basis() != LegalBasis::Consent {
            continue;
        }
        let Some(r) = latest(records, p.id(), now) else {
            continue;
        };
        let pending = match r.body.kind {
            EventKind::ReconsentRequired => true,
            EventKind::Granted => {
                material.is_some_and(|m| r.body.policy_version < m.version)
                    && r.body.expires_at.is_none_or(|e| e > now)
            }
            EventKind::Withdrawn | EventKind::Expired => false,
        };
        if pending {
            out.push(ReconsentNeeded {
                purpose: p.id().clone(),
                consented_under: r.body.policy_version,
                material_version: material.map_or(r.body.policy_version, |m| m.version),
                record: r.position(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Allowed, Decision, Denied};
    use crate::model::LegalBasis;

    #[test]
    fn decisions_round_trip_as_json() {
        for d in [
            Decision::Deny(Denied::NoConsent),
            Decision::Deny(Denied::Erased),
            Decision::Allow(Allowed {
                basis: LegalBasis::Contract,
                record: None,
            }),
        ] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(
                serde_json::from_str::<Decision>(&json).unwrap(),
                d,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_value(Decision::Deny(Denied::NoConsent)).unwrap(),
            serde_json::json!({"decision": "deny", "reason": "no_consent"})
        );
    }
}
