//! Writing and reading the sealed, hash-chained audit log.

use crate::audit::{
    AuditAction, AuditChainBroken, AuditEntry, AuditHead, AuditOutcome, AuditVerifier, key_context,
};
use crate::engine::Ciam;
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::shred::{DataKey, KeyState};

/// How many records one verification read fetches.
const VERIFY_BATCH: u32 = 1000;

impl Ciam {
    /// The user's audit data key: `None` once erased (or, with `create` false, never made).
    pub(crate) async fn audit_data_key(
        &self,
        user: UserId,
        create: bool,
    ) -> Result<Option<DataKey>> {
        let audit = &self.inner.audit;
        let state = match audit.audit_key(user).await? {
            KeyState::Absent if create => {
                let master = self.inner.privacy.master();
                let wrapped = master
                    .new_wrapped_key(&key_context(user), self.inner.rng.as_ref())
                    .map_err(|e| Error::Internal(Box::new(e)))?;
                audit.insert_audit_key(user, &wrapped, self.now()).await?
            }
            state => state,
        };
        match state {
            KeyState::Present(wrapped) => self
                .inner
                .privacy
                .master()
                .unwrap_key(&key_context(user), &wrapped)
                .map(Some)
                .map_err(|e| Error::Internal(Box::new(e))),
            KeyState::Absent | KeyState::Erased(_) => Ok(None),
        }
    }

    /// Seals and appends an entry; on a successful sign-in also records the user's activity
    /// (what the retention job reads).
    pub(crate) async fn append_entry(&self, entry: &AuditEntry) -> Result<()> {
        let key = match entry.user_id {
            Some(user) => self.audit_data_key(user, true).await?,
            None => None,
        };
        let body = entry
            .seal(key.as_ref(), self.inner.rng.as_ref())
            .map_err(|e| Error::Internal(Box::new(e)))?;
        self.inner.audit.append_audit(body).await?;
        if let (Some(user), AuditOutcome::Success) = (entry.user_id, entry.outcome)
            && is_activity(entry.action)
        {
            self.inner
                .identities
                .touch_user_activity(user, entry.at)
                .await?;
        }
        Ok(())
    }

    /// The newest audit entries about a user, newest first, opened with the user's key
    /// (after erasure their personal part reads as empty, [`AuditEntry::erased`]).
    pub async fn audit_log(&self, user: UserId, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_log_where(user, limit, |_, _| true).await
    }

    /// [`Self::audit_log`] keeping only the entries whose action and outcome (stored in the
    /// clear) pass `keep`, filtered before anything is opened: the others cost no decryption,
    /// and the user's key is not even read when none passes.
    pub(crate) async fn audit_log_where(
        &self,
        user: UserId,
        limit: u32,
        keep: impl Fn(AuditAction, AuditOutcome) -> bool,
    ) -> Result<Vec<AuditEntry>> {
        let mut records = self.inner.audit.audit_for_user(user, limit).await?;
        records.retain(|r| keep(r.body.action, r.body.outcome));
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.audit_data_key(user, false).await?;
        Ok(records
            .iter()
            .map(|r| AuditEntry::open(r, key.as_ref()))
            .collect())
    }

    /// The newest audit entries overall, newest first, each opened with its user's key.
    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let records = self.inner.audit.recent_audit(limit).await?;
        let mut keys = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            let key = match r.body.user_id {
                Some(u) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(u) {
                        slot.insert(self.audit_data_key(u, false).await?);
                    }
                    keys.get(&u).and_then(Option::as_ref)
                }
                None => None,
            };
            out.push(AuditEntry::open(r, key));
        }
        Ok(out)
    }

    /// Walks the whole audit chain from the first record: `Ok(Ok(head))` when every record
    /// is intact (keep the head elsewhere, or sign it, to detect a truncated tail later);
    /// `Ok(Err(broken))` naming the first record that was edited, or that follows a deleted,
    /// inserted or moved one. Erased users' records verify like any other: the chain covers
    /// their ciphertext, not their data.
    pub async fn verify_audit(&self) -> Result<std::result::Result<AuditHead, AuditChainBroken>> {
        let mut verifier = AuditVerifier::new();
        let mut after = 0_u64;
        loop {
            let batch = self.inner.audit.audit_after(after, VERIFY_BATCH).await?;
            let Some(last) = batch.last() else {
                return Ok(Ok(verifier.head()));
            };
            let next = last.seq;
            for r in &batch {
                if let Err(broken) = verifier.push(r) {
                    return Ok(Err(broken));
                }
            }
            if next <= after {
                // A store returning records out of order: the verifier has already named it.
                return Ok(Ok(verifier.head()));
            }
            after = next;
        }
    }
}

/// Whether a successful decision of this kind means the user was active (signed in).
fn is_activity(action: AuditAction) -> bool {
    matches!(
        action,
        AuditAction::SignInPassword
            | AuditAction::SignInPasskey
            | AuditAction::SignInMfa
            | AuditAction::SignInPasswordless
            | AuditAction::SignInFederated
            | AuditAction::StepUpPasskey
            | AuditAction::Register
    )
}
