//! Profile schema and progressive profiling.
//!
//! An application declares the profile fields it wants and the *stage* of the relationship at
//! which each becomes worth asking for (for example `signup`, `first_order`, `loyalty`). At any
//! stage, [`ProfileSchema::prompts`] lists the fields that are due and still missing, at most
//! [`ProfileSchema::max_prompts`] at a time, so the user is never asked for everything at once.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::user::ProfileAttributes;

/// The type of a profile field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// Text of at most `max_chars` characters.
    Text {
        /// Maximum length in characters.
        max_chars: usize,
    },
    /// An integer within bounds.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// True or false.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of a fixed set of values.
    Choice {
        /// The allowed values.
        options: Vec<String>,
    },
}

/// One profile field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The attribute name.
    pub name: String,
    /// A label to show the user.
    pub label: String,
    /// The value type.
    pub kind: FieldKind,
    /// The stage from which the field is asked for.
    pub stage: String,
}

/// Why a profile value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// No field of that name is in the schema.
    #[error("unknown profile field `{0}`")]
    UnknownField(String),
    /// The value does not match the field's type or bounds.
    #[error("invalid value for profile field `{0}`")]
    InvalidValue(String),
    /// The schema itself is inconsistent (a field names a stage that is not declared, or two
    /// fields share a name).
    #[error("invalid profile schema: {0}")]
    InvalidSchema(String),
}

/// The profile fields an application collects, with the stages at which it asks for them.
///
/// Deserializing checks the schema as [`ProfileSchema::new`] does: an inconsistent schema
/// read from configuration is refused with the same message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "SchemaFields")]
pub struct ProfileSchema {
    stages: Vec<String>,
    fields: Vec<FieldSpec>,
    max_prompts: usize,
    /// Each field's JSON, in `fields` order, written once: `GET /me` lists prompts on every
    /// call.
    #[serde(skip)]
    rendered: Vec<Box<RawValue>>,
}

impl PartialEq for ProfileSchema {
    fn eq(&self, other: &Self) -> bool {
        // `rendered` follows from `fields`.
        self.stages == other.stages
            && self.fields == other.fields
            && self.max_prompts == other.max_prompts
    }
}

impl Default for ProfileSchema {
    fn default() -> Self {
        Self {
            stages: vec!["signup".to_owned()],
            fields: Vec::new(),
            max_prompts: Self::DEFAULT_MAX_PROMPTS,
            rendered: Vec::new(),
        }
    }
}

/// A [`ProfileSchema`] as written, before its checks.
#[derive(Deserialize)]
struct SchemaFields {
    stages: Vec<String>,
    fields: Vec<FieldSpec>,
    max_prompts: usize,
}

impl TryFrom<SchemaFields> for ProfileSchema {
    type Error = ProfileError;

    fn try_from(s: SchemaFields) -> Result<Self, ProfileError> {
        Self::new(s.stages, s.fields, s.max_prompts)
    }
}

impl ProfileSchema {
    /// Default number of fields asked for at a time.
    pub const DEFAULT_MAX_PROMPTS: usize = 2;

    /// Builds a schema from ordered stage names and fields.
    pub fn new(
        stages: Vec<String>,
        fields: Vec<FieldSpec>,
        max_prompts: usize,
    ) -> Result<Self, ProfileError> {
        if stages.is_empty() {
            return Err(ProfileError::InvalidSchema(
                "at least one stage is needed".into(),
            ));
        }
        if max_prompts == 0 {
            return Err(ProfileError::InvalidSchema(
                "max_prompts must be at least 1".into(),
            ));
        }
        for (i, f) in fields.iter().enumerate() {
            if !stages.contains(&f.stage) {
                return Err(ProfileError::InvalidSchema(format!(
                    "field `{}` names unknown stage `{}`",
                    f.name, f.stage
                )));
            }
            if fields[..i].iter().any(|g| g.name == f.name) {
                return Err(ProfileError::InvalidSchema(format!(
                    "field `{}` is declared twice",
                    f.name
                )));
            }
        }
        let rendered = fields
            .iter()
            .map(serde_json::value::to_raw_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProfileError::InvalidSchema(format!("a field cannot be written: {e}")))?;
        Ok(Self {
            stages,
            fields,
            max_prompts,
            rendered,
        })
    }

    /// The declared fields.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// How many fields are asked for at a time.
    pub fn max_prompts(&self) -> usize {
        self.max_prompts
    }

    /// Checks one value against its field.
    pub fn validate(&self, name: &str, value: &serde_json::Value) -> Result<(), ProfileError> {
        let field = self
            .fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| ProfileError::UnknownField(name.to_owned()))?;
        let ok = match (&field.kind, value) {
            (FieldKind::Text { max_chars }, serde_json::Value::String(s)) => {
                s.chars().count() <= *max_chars && !s.chars().any(char::is_control)
            }
            (FieldKind::Integer { min, max }, serde_json::Value::Number(n)) => {
                n.as_i64().is_some_and(|v| (*min..=*max).contains(&v))
            }
            (FieldKind::Boolean, serde_json::Value::Bool(_)) => true,
            (FieldKind::Date, serde_json::Value::String(s)) => {
                time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                    .is_ok()
            }
            (FieldKind::Choice { options }, serde_json::Value::String(s)) => options.contains(s),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ProfileError::InvalidValue(name.to_owned()))
        }
    }

    /// Checks every attribute of a profile.
    pub fn validate_all(&self, attrs: &ProfileAttributes) -> Result<(), ProfileError> {
        attrs.iter().try_for_each(|(k, v)| self.validate(k, v))
    }

    /// The fields due at `stage` (or earlier) that `attrs` does not have yet, in declaration
    /// order, at most [`Self::max_prompts`]. An unknown stage is treated as the first one.
    pub fn prompts<'a>(&'a self, attrs: &ProfileAttributes, stage: &str) -> Vec<&'a FieldSpec> {
        self.due(attrs, stage).map(|(f, _)| f).collect()
    }

    /// [`Self::prompts`], each as its field's JSON (what serializing the [`FieldSpec`]
    /// writes), rendered once when the schema was built: for answers that list prompts on
    /// every request.
    pub fn prompts_json<'a>(&'a self, attrs: &ProfileAttributes, stage: &str) -> Vec<&'a RawValue> {
        self.due(attrs, stage).map(|(_, json)| json).collect()
    }

    /// The fields due at `stage` that `attrs` lacks, with their JSON, at most `max_prompts`.
    fn due<'a>(
        &'a self,
        attrs: &ProfileAttributes,
        stage: &str,
    ) -> impl Iterator<Item = (&'a FieldSpec, &'a RawValue)> {
        let current = self.stages.iter().position(|s| s == stage).unwrap_or(0);
        self.fields
            .iter()
            .zip(self.rendered.iter().map(|r| &**r))
            .filter(move |(f, _)| {
                self.stages
                    .iter()
                    .position(|s| *s == f.stage)
                    .is_some_and(|i| i <= current)
            })
            .filter(|(f, _)| attrs.get(&f.name).is_none_or(serde_json::Value::is_null))
            .take(self.max_prompts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ProfileSchema {
        let f = |name: &str, kind, stage: &str| FieldSpec {
            name: name.into(),
            label: name.into(),
            kind,
            stage: stage.into(),
        };
        ProfileSchema::new(
            vec!["signup".into(), "first_order".into()],
            vec![
                f("given_name", FieldKind::Text { max_chars: 50 }, "signup"),
                f("birthday", FieldKind::Date, "first_order"),
                f("newsletter", FieldKind::Boolean, "first_order"),
                f(
                    "size",
                    FieldKind::Choice {
                        options: vec!["s".into(), "m".into()],
                    },
                    "first_order",
                ),
            ],
            2,
        )
        .unwrap()
    }

    /// A schema read from configuration is checked as `new` checks it: a consistent one comes
    /// back equal; an unknown stage, a field declared twice, no stage or `max_prompts` 0 is
    /// refused with `new`'s message.
    #[test]
    fn deserializing_checks_the_schema() {
        let good = schema();
        let text = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<ProfileSchema>(&text).unwrap(), good);

        let base = serde_json::to_value(&good).unwrap();
        let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            edit(&mut v);
            serde_json::from_value::<ProfileSchema>(v)
                .unwrap_err()
                .to_string()
        };
        let e = broken(&|v| v["fields"][1]["stage"] = json!("checkout"));
        assert!(e.contains("names unknown stage `checkout`"), "{e}");
        let e = broken(&|v| v["fields"][1]["name"] = json!("given_name"));
        assert!(e.contains("`given_name` is declared twice"), "{e}");
        let e = broken(&|v| v["max_prompts"] = json!(0));
        assert!(e.contains("max_prompts must be at least 1"), "{e}");
        let e = broken(&|v| {
            v["stages"] = json!([]);
            v["fields"] = json!([]);
        });
        assert!(e.contains("at least one stage"), "{e}");
    }

    #[test]
    fn prompts_respect_stage_and_limit() {
        let s = schema();
        let mut attrs = ProfileAttributes::new();
        let names = |v: Vec<&FieldSpec>| v.into_iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(s.prompts(&attrs, "signup")), ["given_name"]);
        assert_eq!(
            names(s.prompts(&attrs, "first_order")),
            ["given_name", "birthday"]
        );
        attrs.insert("given_name".into(), json!("Ada"));
        attrs.insert("birthday".into(), json!("1990-02-03"));
        assert_eq!(
            names(s.prompts(&attrs, "first_order")),
            ["newsletter", "size"]
        );
    }

    /// The rendered prompts are the same JSON, byte for byte, as serializing the fields, at
    /// every stage and fill level, for a schema built with `new` and one read back from JSON.
    #[test]
    fn rendered_prompts_are_the_fields_json() {
        let built = schema();
        let read: ProfileSchema =
            serde_json::from_str(&serde_json::to_string(&built).unwrap()).unwrap();
        for s in [&built, &read] {
            let mut attrs = ProfileAttributes::new();
            let mut seen = 0;
            for name in ["", "given_name", "birthday", "newsletter", "size"] {
                if !name.is_empty() {
                    attrs.insert(name.into(), json!("x"));
                }
                for stage in ["signup", "first_order", "unknown"] {
                    let fields = serde_json::to_string(&s.prompts(&attrs, stage)).unwrap();
                    let rendered = serde_json::to_string(&s.prompts_json(&attrs, stage)).unwrap();
                    assert_eq!(rendered, fields, "{stage} after {name:?}");
                    seen += s.prompts(&attrs, stage).len();
                }
            }
            assert!(seen >= 8, "too few prompts compared: {seen}");
        }
        // The schema's own JSON does not carry the rendered copies.
        assert!(!serde_json::to_string(&built).unwrap().contains("rendered"));
    }

    #[test]
    fn values_are_type_checked() {
        let s = schema();
        assert!(s.validate("birthday", &json!("1990-02-30")).is_err());
        assert!(s.validate("size", &json!("xl")).is_err());
        assert!(s.validate("given_name", &json!("x".repeat(51))).is_err());
        assert!(s.validate("nope", &json!(1)).is_err());
        assert!(s.validate("newsletter", &json!(true)).is_ok());
    }

    #[test]
    fn inconsistent_schemas_are_refused() {
        let f = FieldSpec {
            name: "a".into(),
            label: "a".into(),
            kind: FieldKind::Boolean,
            stage: "later".into(),
        };
        assert!(ProfileSchema::new(vec!["signup".into()], vec![f], 2).is_err());
        assert!(ProfileSchema::new(vec![], vec![], 2).is_err());
    }
}
