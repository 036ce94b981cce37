//! Consent ledger and privacy requests for ciam (work in progress).
