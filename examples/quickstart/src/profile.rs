//! The quickstart's profile schema: progressive profiling in two stages. At sign-up nothing is
//! required; the account page asks for at most two missing fields at a time (`GET
//! /auth/me?stage=engaged`) and saves the answers with `PATCH /auth/profile`.

use ciam::profile::{FieldKind, FieldSpec, ProfileSchema};

/// The stage the account page asks for.
pub(crate) const ACCOUNT_STAGE: &str = "engaged";

/// The schema: a display name and a country from sign-up on, a birthday and the newsletter
/// frequency once the user comes back.
pub(crate) fn schema() -> Result<ProfileSchema, String> {
    let field = |name: &str, label: &str, kind, stage: &str| FieldSpec {
        name: name.to_owned(),
        label: label.to_owned(),
        kind,
        stage: stage.to_owned(),
    };
    let choice = |options: &[&str]| FieldKind::Choice {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
    };
    ProfileSchema::new(
        vec!["signup".to_owned(), ACCOUNT_STAGE.to_owned()],
        vec![
            field(
                "display_name",
                "What should we call you?",
                FieldKind::Text { max_chars: 64 },
                "signup",
            ),
            field(
                "country",
                "Where do you live?",
                choice(&["DE", "FR", "GB", "US", "other"]),
                "signup",
            ),
            field("birthday", "Your birthday", FieldKind::Date, ACCOUNT_STAGE),
            field(
                "newsletter_frequency",
                "How often would you like news?",
                choice(&["weekly", "monthly", "never"]),
                ACCOUNT_STAGE,
            ),
        ],
        ProfileSchema::DEFAULT_MAX_PROMPTS,
    )
    .map_err(|e| format!("profile schema: {e}"))
}
