//! OpenID Connect and OAuth 2.0 relying party for ciam (work in progress).
