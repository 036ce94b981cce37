//! The checks.

use std::collections::HashSet;
use std::sync::Arc;

use ciam_core::clock::{Clock, ManualClock};
use time::Duration;
use time::macros::datetime;

use super::fixtures::{FlakySink, START, ledger, user};
use super::{Field, Tamper};
use crate::chain::{Breakage, ChainBroken, RecordBody, StoredRecord};
use crate::keys::SigningKey;
use crate::model::{ConsentEvent, EventKind, LegalBasis, PurposeId, Source};
use crate::outbox::OutboxRelay;
use crate::receipt::{Address, PiiController, ReceiptConfig, verify_receipt};
use crate::{ConsentLedger, Decision, Denied, Error, Personal};

fn web() -> Source {
    Source::new("web", "privacy-centre").text_shown(b"May we?")
}

/// Five records: users 1, 2, 1, 3, 1 (grants and a withdrawal).
async fn five(ledger: &ConsentLedger) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    for (u, purpose, kind) in [
        (1, "newsletter", EventKind::Granted),
        (2, "newsletter", EventKind::Granted),
        (1, "ads", EventKind::Granted),
        (3, "newsletter", EventKind::Granted),
        (1, "newsletter", EventKind::Withdrawn),
    ] {
        let event = ConsentEvent::new(kind, purpose)
            .unwrap()
            .source(web())
            .jurisdiction("DE")
            .attribute("ip", "192.0.2.7");
        out.push(ledger.record(user(u), event).await.unwrap().record);
    }
    out
}

fn broken(r: Result<crate::ChainHead, Error>, what: &str) -> ChainBroken {
    match r {
        Err(Error::Chain(b)) => b,
        other => panic!("{what}: verify must report a broken chain, got {other:?}"),
    }
}

/// Appended records read back equal, in order, with their personal data; they chain; the
/// outbox holds one event per record.
pub async fn append_and_read<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    assert_eq!(ledger.verify().await.unwrap().seq, 0, "empty ledger head");
    let written = five(&ledger).await;
    let seqs: Vec<u64> = written.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "global positions");
    let subject: Vec<u64> = written.iter().map(|r| r.subject_seq).collect();
    assert_eq!(subject, [1, 1, 2, 1, 3], "subject positions");
    assert_eq!(written[1].prev_hash, written[0].hash, "global link");
    assert_eq!(
        written[2].prev_subject_hash, written[0].hash,
        "subject link"
    );

    let history = ledger.history(user(1)).await.unwrap();
    assert_eq!(history.len(), 3, "user 1 has three records");
    for (h, w) in history.iter().zip([&written[0], &written[2], &written[4]]) {
        assert_eq!(&h.record, w, "a record reads back as written");
        let Personal::Open(p) = &h.personal else {
            panic!("personal data opens")
        };
        assert_eq!(p.jurisdiction.as_deref(), Some("DE"));
        assert_eq!(
            p.attributes.get("ip").map(String::as_str),
            Some("192.0.2.7")
        );
    }
    let page = store.records_after(2, 2).await.unwrap();
    assert_eq!(page, written[2..4].to_vec(), "records_after pages by seq");
    assert_eq!(
        store.record(written[3].body.id).await.unwrap().as_ref(),
        Some(&written[3]),
        "record by id"
    );
    assert_eq!(
        store.outbox_undelivered().await.unwrap(),
        5,
        "one event each"
    );
    let head = ledger.verify().await.unwrap();
    assert_eq!((head.seq, head.hash), (5, written[4].hash), "verified head");
}

/// Concurrent appends for the same user (and others) give one valid chain with no gaps.
pub async fn concurrent_appends_keep_one_chain<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let mut tasks = Vec::new();
    for i in 0..24u8 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let who = if i % 3 == 0 { user(2) } else { user(1) };
            let kind = if i % 2 == 0 {
                EventKind::Granted
            } else {
                EventKind::Withdrawn
            };
            let event = ConsentEvent::new(kind, "newsletter").unwrap().source(web());
            ledger.record(who, event).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = ledger.verify().await.unwrap();
    assert_eq!(head.seq, 24, "every concurrent append is in the chain");
    let ones = store.subject_records(user(1)).await.unwrap();
    assert_eq!(ones.len(), 16, "user 1's appends");
    assert!(
        ones.iter().zip(1..).all(|(r, n)| r.subject_seq == n),
        "user 1's chain has no gaps"
    );
    crate::chain::verify_subject(&ones).unwrap();
}

/// Two first writes for a new user agree on one data key.
pub async fn data_keys_race_to_one<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            ledger.grant(user(9), "newsletter", web()).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history = ledger.history(user(9)).await.unwrap();
    assert_eq!(history.len(), 8);
    assert!(
        history
            .iter()
            .all(|r| matches!(r.personal, Personal::Open(_))),
        "every record opens with the one stored key"
    );
}

/// Editing `field` of a stored record is caught at that record.
pub async fn edit_is_detected<S: Tamper>(store: S, field: Field) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let written = five(&ledger).await;
    store.edit(3, field).await;
    let b = broken(ledger.verify().await, "edited record");
    assert_eq!(
        (b.position, b.seq, b.id, b.breakage),
        (3, 3, written[2].body.id, Breakage::HashMismatch),
        "an edit of {field:?} names record 3"
    );
}

/// Deleting a record is caught at the record after the gap.
pub async fn deletion_is_detected<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let written = five(&ledger).await;
    store.delete(3).await;
    let b = broken(ledger.verify().await, "deleted record");
    assert_eq!(
        (b.position, b.seq, b.id, b.breakage),
        (
            3,
            4,
            written[3].body.id,
            Breakage::SequenceGap { expected: 3 }
        ),
        "a deletion names the record after the gap"
    );
}

/// Inserting a well-formed record (correct links and hash for its place) in the middle is
/// caught at the first record it pushed along; appending a copy is caught at the copy.
pub async fn insertion_is_detected<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let written = five(&ledger).await;
    let mut forged_body: RecordBody = written[1].body.clone();
    forged_body.id = crate::chain::RecordId::from_bytes([0xee; 16]);
    forged_body.user = user(7);
    let forged = StoredRecord::link(forged_body, Some((2, written[1].hash)), None);
    assert_eq!(forged.seq, 3);
    store.shift_up(3).await;
    store.insert(&forged).await;
    let b = broken(ledger.verify().await, "inserted record");
    assert_eq!(
        (b.position, b.seq, b.id, b.breakage),
        (4, 4, written[2].body.id, Breakage::HashMismatch),
        "a middle insertion names the first record it moved"
    );

    // A copy appended at the end, keeping its old links.
    let store2 = store.clone();
    store2.delete(3).await;
    for seq in 4..=6 {
        // Undo the shift: move each record back down by deleting and re-inserting.
        let r = store2.records_after(seq - 1, 1).await.unwrap().remove(0);
        store2.delete(seq).await;
        let mut back = r;
        back.seq = seq - 1;
        store2.insert(&back).await;
    }
    ledger.verify().await.expect("restored ledger verifies");
    let mut copy = written[1].clone();
    copy.body.id = crate::chain::RecordId::from_bytes([0xdd; 16]);
    copy.body.user = user(8);
    copy.seq = 6;
    store2.insert(&copy).await;
    let b = broken(ledger.verify().await, "appended copy");
    assert_eq!(
        (b.position, b.seq, b.id, b.breakage),
        (6, 6, copy.body.id, Breakage::HashMismatch),
        "an appended copy is named"
    );
}

/// Swapping two records is caught at the first of them.
pub async fn reordering_is_detected<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let written = five(&ledger).await;
    store.swap(2, 4).await;
    let b = broken(ledger.verify().await, "swapped records");
    assert_eq!(
        (b.position, b.seq, b.id, b.breakage),
        (2, 2, written[3].body.id, Breakage::HashMismatch),
        "a swap names the earlier position"
    );
}

/// A signed anchor verifies against the grown ledger, and catches a rewrite that recomputed
/// every hash, and a cut-off tail.
pub async fn anchors_detect_rewrites<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let key = SigningKey::from_seed(&[5; 32]).unwrap();
    let written = five(&ledger).await;
    let anchor = ledger.sign_anchor(&key).await.unwrap();
    let claims = crate::anchor::verify_anchor(&anchor, key.public_jwk()).unwrap();
    assert_eq!((claims.seq, claims.hash), (5, written[4].hash));
    let dump = store.records_after(0, 100).await.unwrap();
    let head = crate::anchor::check_against(&dump, &claims).unwrap();
    assert_eq!(
        head.seq, 5,
        "an auditor checks a dump against the anchor offline"
    );
    ledger.grant(user(4), "ads", web()).await.unwrap();
    let head = ledger
        .verify_against_anchor(&anchor, key.public_jwk())
        .await
        .unwrap();
    assert_eq!(head.seq, 6, "a grown ledger passes");
    let other = SigningKey::from_seed(&[6; 32]).unwrap();
    assert!(
        matches!(
            ledger
                .verify_against_anchor(&anchor, other.public_jwk())
                .await,
            Err(Error::BadSignature)
        ),
        "an anchor checked with another key fails"
    );

    // Rewrite history from record 2 on, recomputing every link and hash: the chain verifies
    // but no longer holds the anchored record.
    let all = store.records_after(0, 100).await.unwrap();
    let mut prev = Some((1, all[0].hash));
    let mut subjects = std::collections::HashMap::new();
    subjects.insert(all[0].body.user, (1, all[0].hash));
    for r in &all[1..] {
        let mut body = r.body.clone();
        if r.seq == 2 {
            body.kind = EventKind::Withdrawn;
        }
        let relinked = StoredRecord::link(body, prev, subjects.get(&r.body.user).copied());
        store.delete(r.seq).await;
        store.insert(&relinked).await;
        prev = Some((relinked.seq, relinked.hash));
        subjects.insert(relinked.body.user, (relinked.subject_seq, relinked.hash));
    }
    ledger
        .verify()
        .await
        .expect("the rewritten chain is self-consistent");
    match ledger
        .verify_against_anchor(&anchor, key.public_jwk())
        .await
    {
        Err(Error::Rewritten { seq, anchored, .. }) => {
            assert_eq!((seq, anchored), (5, written[4].hash));
        }
        other => panic!("a rewrite must be reported against the anchor, got {other:?}"),
    }
    // Cut the tail off.
    for seq in [6, 5] {
        store.delete(seq).await;
    }
    assert!(
        matches!(
            ledger
                .verify_against_anchor(&anchor, key.public_jwk())
                .await,
            Err(Error::Truncated {
                anchored: 5,
                head: 4
            })
        ),
        "a truncated ledger is reported"
    );
}

/// Grants allow with the grant as justification; expiry, withdrawal and re-grants are
/// honoured; the cache follows every change made through the ledger.
pub async fn check_grant_expiry_withdrawal<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let u = user(1);
    assert_eq!(
        ledger.check(u, "newsletter").await.unwrap(),
        Decision::Deny(Denied::NoConsent),
        "nothing recorded"
    );
    let grant = ledger
        .record(
            u,
            ConsentEvent::grant("newsletter")
                .unwrap()
                .source(web())
                .expires_at(START + Duration::days(30)),
        )
        .await
        .unwrap();
    let d = ledger.check(u, "newsletter").await.unwrap();
    assert!(
        d.is_allowed(),
        "a grant allows (cache evicted by the write)"
    );
    assert_eq!(
        d.record().map(|r| r.id),
        Some(grant.record.body.id),
        "the grant justifies it"
    );
    assert_eq!(
        ledger.check_cached(u, "newsletter"),
        Some(d),
        "the answer is cached"
    );
    clock.advance(Duration::days(30));
    assert!(
        matches!(
            ledger.check(u, "newsletter").await.unwrap(),
            Decision::Deny(Denied::Expired(r)) if r.id == grant.record.body.id
        ),
        "an expired grant denies, even from the cache"
    );
    let regrant = ledger.grant(u, "newsletter", web()).await.unwrap();
    assert!(ledger.check(u, "newsletter").await.unwrap().is_allowed());
    let withdrawal = ledger.withdraw(u, "newsletter", web()).await.unwrap();
    assert_eq!(
        ledger.check(u, "newsletter").await.unwrap(),
        Decision::Deny(Denied::Withdrawn(withdrawal.record.position())),
        "a withdrawal denies at once"
    );
    assert!(regrant.record.seq < withdrawal.record.seq);
    assert!(matches!(
        ledger.check(u, "nope").await,
        Err(Error::UnknownPurpose)
    ));
    assert!(matches!(
        ledger.grant(u, "nope", web()).await,
        Err(Error::UnknownPurpose)
    ));
    assert!(matches!(
        ledger
            .record(
                u,
                ConsentEvent::grant("newsletter")
                    .unwrap()
                    .policy_version(99)
            )
            .await,
        Err(Error::UnknownPolicyVersion)
    ));
    let long = "x".repeat(2_000);
    assert!(matches!(
        ledger
            .grant(u, "newsletter", Source::new(&long, "web"))
            .await,
        Err(Error::InvalidInput("application"))
    ));
    assert!(matches!(
        ledger
            .record(
                u,
                ConsentEvent::grant("newsletter")
                    .unwrap()
                    .attribute("note", &long)
            )
            .await,
        Err(Error::InvalidInput("attribute"))
    ));
    assert!(matches!(
        ConsentEvent::grant("Not A Purpose"),
        Err(Error::InvalidInput("purpose id"))
    ));
    assert_eq!(
        ledger.verify().await.unwrap().seq,
        3,
        "refused input wrote nothing"
    );
}

/// Contract and legal obligation allow without a record; legitimate interest allows until
/// the subject objects.
pub async fn other_legal_bases<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let u = user(1);
    for (purpose, basis) in [
        ("billing", LegalBasis::Contract),
        ("fraud", LegalBasis::LegalObligation),
        ("analytics", LegalBasis::LegitimateInterest),
    ] {
        assert_eq!(
            ledger.check(u, purpose).await.unwrap(),
            Decision::Allow(crate::Allowed {
                basis,
                record: None
            }),
            "{purpose} is allowed on its basis"
        );
    }
    let objection = ledger.withdraw(u, "analytics", web()).await.unwrap();
    assert_eq!(
        ledger.check(u, "analytics").await.unwrap(),
        Decision::Deny(Denied::Withdrawn(objection.record.position())),
        "an objection stops legitimate-interest processing"
    );
    ledger.withdraw(u, "billing", web()).await.unwrap();
    assert!(
        ledger.check(u, "billing").await.unwrap().is_allowed(),
        "a contract basis does not depend on consent records"
    );
}

/// `was_permitted` answers for past times with the policy version and the proof.
pub async fn historical_queries<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let u = user(1);
    clock.advance(Duration::days(1));
    let grant = ledger.grant(u, "newsletter", web()).await.unwrap();
    clock.set(datetime!(2026-07-01 00:00 UTC));
    let regrant = ledger.grant(u, "newsletter", web()).await.unwrap();
    clock.advance(Duration::days(10));
    let withdrawal = ledger.withdraw(u, "newsletter", web()).await.unwrap();
    clock.advance(Duration::days(10));

    let before = ledger.was_permitted(u, "newsletter", START).await.unwrap();
    assert_eq!(before.decision, Decision::Deny(Denied::NoConsent));
    assert!(before.proof.is_none());

    let feb = ledger
        .was_permitted(u, "newsletter", datetime!(2026-02-01 00:00 UTC))
        .await
        .unwrap();
    assert!(feb.decision.is_allowed());
    assert_eq!(feb.policy_version, Some(1), "granted under version 1");
    assert_eq!(feb.policy_in_force, Some(1));
    assert_eq!(
        feb.proof.as_ref(),
        Some(&grant.record),
        "the proof is the grant"
    );

    let july = ledger
        .was_permitted(u, "newsletter", datetime!(2026-07-05 00:00 UTC))
        .await
        .unwrap();
    assert_eq!(july.policy_version, Some(2));
    assert_eq!(july.proof.as_ref(), Some(&regrant.record));

    let later = ledger
        .was_permitted(u, "newsletter", clock.now())
        .await
        .unwrap();
    assert_eq!(
        later.decision,
        Decision::Deny(Denied::Withdrawn(withdrawal.record.position()))
    );
    assert_eq!(later.proof.as_ref(), Some(&withdrawal.record));
}

/// A material policy change lists the purposes consented under the older version;
/// `require_reconsent` makes them deny until the user grants again.
pub async fn material_change_needs_reconsent<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let u = user(1);
    ledger.grant(u, "newsletter", web()).await.unwrap();
    ledger.grant(u, "ads", web()).await.unwrap();
    ledger.withdraw(u, "ads", web()).await.unwrap();
    assert!(ledger.needs_reconsent(u).await.unwrap().is_empty());
    clock.set(datetime!(2026-06-02 00:00 UTC));
    let needed = ledger.needs_reconsent(u).await.unwrap();
    assert_eq!(needed.len(), 1, "only the live consent needs asking again");
    assert_eq!(needed[0].purpose, PurposeId::new("newsletter").unwrap());
    assert_eq!(
        (needed[0].consented_under, needed[0].material_version),
        (1, 2)
    );
    assert!(
        ledger.check(u, "newsletter").await.unwrap().is_allowed(),
        "still allowed until re-consent is required"
    );
    let required = ledger.require_reconsent(u, web()).await.unwrap();
    assert_eq!(required.len(), 1);
    assert!(matches!(
        ledger.check(u, "newsletter").await.unwrap(),
        Decision::Deny(Denied::ReconsentRequired(_))
    ));
    assert_eq!(
        ledger.needs_reconsent(u).await.unwrap().len(),
        1,
        "still listed"
    );
    ledger.grant(u, "newsletter", web()).await.unwrap();
    assert!(ledger.needs_reconsent(u).await.unwrap().is_empty());
    assert!(ledger.check(u, "newsletter").await.unwrap().is_allowed());
}

/// A GPC signal withdraws every permitted sale-or-share purpose, once.
pub async fn gpc_withdraws_sale_or_share<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let u = user(1);
    ledger.grant(u, "ads", web()).await.unwrap();
    ledger.grant(u, "newsletter", web()).await.unwrap();
    let gpc = Source::new("web", "gpc-header");
    let withdrawn = ledger.apply_gpc(u, gpc.clone()).await.unwrap();
    let purposes: HashSet<&str> = withdrawn
        .iter()
        .map(|r| r.record.body.purpose.as_str())
        .collect();
    assert_eq!(purposes, HashSet::from(["ads", "analytics"]));
    assert!(
        withdrawn
            .iter()
            .all(|r| r.record.body.kind == EventKind::Withdrawn)
    );
    assert!(!ledger.check(u, "ads").await.unwrap().is_allowed());
    assert!(!ledger.check(u, "analytics").await.unwrap().is_allowed());
    assert!(ledger.check(u, "newsletter").await.unwrap().is_allowed());
    assert!(
        ledger.apply_gpc(u, gpc).await.unwrap().is_empty(),
        "a repeated signal writes nothing"
    );
}

/// After erasure the personal data is unreadable (and absent from a dump), every chain
/// verifies, checks deny, nothing more is recorded, and history before erasure still answers.
pub async fn erasure_shreds_and_chains_verify<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let u = user(1);
    let secret = "alice.erasure@example.com";
    ledger
        .record(
            u,
            ConsentEvent::grant("newsletter")
                .unwrap()
                .source(web())
                .jurisdiction("FR")
                .attribute("email", secret),
        )
        .await
        .unwrap();
    ledger.grant(user(2), "newsletter", web()).await.unwrap();
    let wrapped = match store.data_key(u).await.unwrap() {
        crate::KeyState::Present(w) => w,
        other => panic!("a key exists, got {other:?}"),
    };
    let dump = store.dump().await;
    assert!(
        !contains(&dump, secret.as_bytes()),
        "personal data is never stored in the clear"
    );
    clock.advance(Duration::days(1));
    ledger.erase_subject(u).await.unwrap();
    ledger.erase_subject(u).await.unwrap();
    assert!(matches!(
        store.data_key(u).await.unwrap(),
        crate::KeyState::Erased(t) if t == START + Duration::days(1)
    ));
    let dump = store.dump().await;
    assert!(
        !contains(&dump, &wrapped),
        "the wrapped data key is gone from every table"
    );
    let history = ledger.history(u).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].personal, Personal::Erased);
    ledger
        .verify()
        .await
        .expect("the chain verifies after erasure");
    assert_eq!(
        ledger.check(u, "newsletter").await.unwrap(),
        Decision::Deny(Denied::Erased)
    );
    assert!(matches!(
        ledger.grant(u, "newsletter", web()).await,
        Err(Error::Erased)
    ));
    let before = ledger.was_permitted(u, "newsletter", START).await.unwrap();
    assert!(
        before.decision.is_allowed(),
        "what was permitted before erasure still answers"
    );
    assert!(
        ledger
            .check(user(2), "newsletter")
            .await
            .unwrap()
            .is_allowed(),
        "others are untouched"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn receipt_config() -> ReceiptConfig {
    ReceiptConfig {
        controllers: vec![PiiController {
            pii_controller: "Example Ltd".into(),
            contact: "Data Protection Officer".into(),
            address: Address {
                street_address: "1 Example Street".into(),
                address_country: "IE".into(),
            },
            email: "dpo@example.com".into(),
            phone: "+353 1 000 0000".into(),
            pii_controller_url: Some("https://example.com".into()),
        }],
        service: "Example".into(),
        jurisdiction: "IE".into(),
        language: "en".into(),
    }
}

/// Receipts verify offline with the published key and carry the Kantara fields; a changed
/// receipt, another key or another user's record fail.
pub async fn receipts_verify_and_tampering_fails<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let key = SigningKey::from_seed(&[3; 32]).unwrap();
    let u = user(1);
    let grant = ledger
        .record(
            u,
            ConsentEvent::grant("ads")
                .unwrap()
                .source(web())
                .jurisdiction("DE")
                .language("de")
                .expires_at(START + Duration::days(365)),
        )
        .await
        .unwrap();
    let id = grant.record.body.id;
    let token = ledger
        .receipt(u, id, &receipt_config(), &key)
        .await
        .unwrap();
    let receipt = verify_receipt(&token, key.public_jwk()).unwrap();
    assert_eq!(receipt.version, "KI-CR-v1.1.0");
    assert_eq!(receipt.consent_receipt_id, id.to_string());
    assert_eq!(receipt.jurisdiction, "DE");
    assert_eq!(receipt.language, "de");
    assert_eq!(receipt.consent_timestamp, START.unix_timestamp());
    assert_eq!(receipt.pii_principal_id, u.to_string());
    assert_eq!(receipt.policy_url, "https://example.com/privacy/1");
    let purpose = &receipt.services[0].purposes[0];
    assert_eq!(purpose.consent_type, "EXPLICIT");
    assert!(purpose.third_party_disclosure);
    assert_eq!(purpose.third_party_name.as_deref(), Some("Example Ads Ltd"));
    assert_eq!(purpose.termination, "two years after the last visit");
    assert!(receipt.sensitive);
    assert_eq!(receipt.ciam.record_hash, grant.record.hash.to_string());
    let iso = receipt.to_iso27560();
    assert_eq!(iso["header"]["recordId"], id.to_string());
    assert_eq!(iso["events"][0]["eventType"], "given");

    // Change one claim and re-encode the payload, keeping the signature.
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["jurisdiction"] = "US".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert!(matches!(
        verify_receipt(&forged, key.public_jwk()),
        Err(Error::BadSignature)
    ));
    let other = SigningKey::from_seed(&[4; 32]).unwrap();
    assert!(matches!(
        verify_receipt(&token, other.public_jwk()),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        ledger.receipt(user(2), id, &receipt_config(), &key).await,
        Err(Error::NotFound)
    ));
    ledger.erase_subject(u).await.unwrap();
    assert!(matches!(
        ledger.receipt(u, id, &receipt_config(), &key).await,
        Err(Error::Erased)
    ));
}

/// A failing sink gets the event later, after the backoff; deliveries are marked.
pub async fn outbox_retries_with_backoff<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    let first = ledger.grant(user(1), "newsletter", web()).await.unwrap();
    let second = ledger.grant(user(2), "ads", web()).await.unwrap();
    let sink = Arc::new(FlakySink::failing(2));
    let relay = OutboxRelay::new(Arc::new(store.clone()), sink.clone())
        .clock(Arc::new(clock.clone()))
        .backoff(Duration::seconds(10), Duration::seconds(60));
    assert_eq!(relay.backoff_after(1), Duration::seconds(10));
    assert_eq!(relay.backoff_after(2), Duration::seconds(20));
    assert_eq!(relay.backoff_after(9), Duration::seconds(60));
    let r = relay.run_once().await.unwrap();
    assert_eq!((r.delivered, r.failed), (0, 2), "both fail first");
    assert_eq!(relay.run_once().await.unwrap().delivered, 0, "not due yet");
    clock.advance(Duration::seconds(9));
    assert_eq!(
        relay.run_once().await.unwrap().delivered,
        0,
        "still backing off"
    );
    clock.advance(Duration::seconds(1));
    let r = relay.run_once().await.unwrap();
    assert_eq!(
        (r.delivered, r.failed),
        (2, 0),
        "delivered after the backoff"
    );
    let events = sink.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].record, first.record.body.id);
    assert_eq!(events[1].record, second.record.body.id);
    assert_eq!(events[1].kind, EventKind::Granted);
    assert_eq!(store.outbox_undelivered().await.unwrap(), 0);
    assert_eq!(
        relay.run_once().await.unwrap().delivered,
        0,
        "nothing twice"
    );
}

/// A relay that claimed an event and died leaves it to be delivered after the lease.
pub async fn outbox_lease_expires<S: Tamper>(store: S) {
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock);
    ledger.grant(user(1), "newsletter", web()).await.unwrap();
    let claimed = store
        .claim_outbox(START, START + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "claimed by a relay that then dies");
    let sink = Arc::new(FlakySink::failing(0));
    let relay = OutboxRelay::new(Arc::new(store.clone()), sink.clone())
        .clock(Arc::new(clock.clone()))
        .lease(Duration::seconds(30));
    assert_eq!(relay.run_once().await.unwrap().delivered, 0, "leased");
    clock.advance(Duration::seconds(30));
    assert_eq!(relay.run_once().await.unwrap().delivered, 1, "lease over");
    assert_eq!(sink.events()[0].seq, 1);
}

/// Events written before a crash (the store closed without relaying) are delivered by a
/// relay on the reopened store. `reopen` closes `store` and opens the same database again.
pub async fn outbox_survives_restart<S, R, Fut>(store: S, reopen: R)
where
    S: Tamper,
    R: FnOnce(S) -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let clock = ManualClock::new(START);
    {
        let ledger = ledger(&store, &clock);
        ledger.grant(user(1), "newsletter", web()).await.unwrap();
        ledger.withdraw(user(1), "newsletter", web()).await.unwrap();
    }
    let store = reopen(store).await;
    let sink = Arc::new(FlakySink::failing(0));
    let relay =
        OutboxRelay::new(Arc::new(store.clone()), sink.clone()).clock(Arc::new(clock.clone()));
    assert_eq!(relay.run_once().await.unwrap().delivered, 2);
    let kinds: Vec<EventKind> = sink.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Granted, EventKind::Withdrawn]);
    ledger(&store, &clock)
        .verify()
        .await
        .expect("the reopened ledger verifies");
}
