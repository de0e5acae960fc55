//! String types whose rule is a pattern in the spec but a plain character test at runtime.
//!
//! poem-openapi's `pattern` validator compiles its regex on every value it checks. At a
//! thousand segments per batch, with a pattern on two fields each, that was most of
//! ingest's time. These types declare the same schema (so the spec, the generated clients and
//! the request checks are unchanged) and check the rule with a few comparisons per character.

use std::{borrow::Cow, fmt, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::patterns::{
    is_limit_name, is_non_blank, is_visible_ascii, IDEMPOTENCY_KEY_PATTERN, LIMIT_NAME_PATTERN,
    NON_BLANK_PATTERN,
};

/// Text with at least one character outside Unicode `White_Space` and no U+0000, declared
/// with [`NON_BLANK_PATTERN`]. Lengths are the field's own `validator`s.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonBlank(String);

impl NonBlank {
    /// Whether `text` keeps the rule [`NON_BLANK_PATTERN`] states.
    pub fn allows(text: &str) -> bool {
        is_non_blank(text)
    }

    /// A value this server checked when it was first given and has stored since (read back
    /// for a response); not checked again.
    pub fn stored(text: String) -> Self {
        NonBlank(text)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl TryFrom<String> for NonBlank {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if NonBlank::allows(&text) {
            Ok(NonBlank(text))
        } else {
            Err("must not be blank or contain U+0000")
        }
    }
}

impl TryFrom<&str> for NonBlank {
    type Error = &'static str;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        NonBlank::try_from(text.to_string())
    }
}

/// An `Idempotency-Key`: 1–255 characters of visible ASCII or space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LENGTH: usize = 255;

    /// Whether `key` keeps the declared length and [`IDEMPOTENCY_KEY_PATTERN`].
    pub fn allows(key: &str) -> bool {
        key.len() <= Self::MAX_LENGTH && is_visible_ascii(key)
    }
}

/// A rate limit's name, declared with [`LIMIT_NAME_PATTERN`]. Read back with every API key
/// on the request path, so checked without a regex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitName(String);

impl LimitName {
    pub fn allows(text: &str) -> bool {
        is_limit_name(text)
    }
}

impl TryFrom<&str> for LimitName {
    type Error = &'static str;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        match LimitName::allows(text) {
            true => Ok(LimitName(text.to_string())),
            false => Err("must be 1–64 of a-z, 0-9, `_`"),
        }
    }
}

/// What the types share: a string newtype with an inline string schema.
macro_rules! string_type {
    ($name:ident, $what:literal, |$schema:ident| $declare:expr) => {
        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let mut $schema = MetaSchema::new("string");
                $declare;
                MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }

        impl $name {
            fn parse(text: String) -> ParseResult<Self> {
                if $name::allows(&text) {
                    Ok($name(text))
                } else {
                    Err(ParseError::custom(concat!("must be ", $what)))
                }
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(text)) => $name::parse(text),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                $name::parse(value.to_string())
            }
        }
    };
}

string_type!(
    NonBlank,
    "text that is not blank, without U+0000",
    |schema| { schema.pattern = Some(NON_BLANK_PATTERN.into()) }
);

string_type!(LimitName, "1–64 of a-z, 0-9, `_`", |schema| {
    schema.pattern = Some(LIMIT_NAME_PATTERN.into())
});

string_type!(
    IdempotencyKey,
    "1–255 characters of visible ASCII or space",
    |schema| {
        schema.min_length = Some(1);
        schema.max_length = Some(IdempotencyKey::MAX_LENGTH);
        schema.pattern = Some(IDEMPOTENCY_KEY_PATTERN.into());
    }
);

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    #[test]
    fn non_blank_refuses_empty_blank_and_nul() {
        // Agreement with the pattern on every character: spec::tests.
        assert!(!NonBlank::allows(""));
        assert!(!NonBlank::allows(" \u{3000}\t\u{85}"));
        assert!(!NonBlank::allows("a\0"));
        assert!(NonBlank::allows(" \u{3000}a\t"));
    }

    #[test]
    fn idempotency_key_agrees_with_its_schema() {
        let pattern = Regex::new(IDEMPOTENCY_KEY_PATTERN).unwrap();
        for c in (0..=0x2FFu32).filter_map(char::from_u32) {
            let text = format!("k{c}");
            assert_eq!(IdempotencyKey::allows(&text), pattern.is_match(&text));
        }
        assert!(!IdempotencyKey::allows(""));
        assert!(IdempotencyKey::allows(&"k".repeat(255)));
        assert!(!IdempotencyKey::allows(&"k".repeat(256)));
    }
}
