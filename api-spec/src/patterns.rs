//! The rules for strings the spec states as patterns: each pattern, what it means in a
//! 422's message, and, for the commonest, a function that tests it without a regex.

use crate::schema_check::PatternTest;

/// The pattern given to every string that has no pattern, format or enum of its own: no
/// database column can store U+0000, so no string may carry it.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// The pattern of text that must not be blank: some character outside Unicode `White_Space`
/// (what `str::trim` removes), and no U+0000. Spelled out rather than `\\s`, which means
/// something else in each regex dialect a client may check it with.
pub const NON_BLANK_PATTERN: &str = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$";

/// Functions that test the commonest patterns without a regex (the request checks run them
/// on every string of every body); `pattern_tests_agree_with_their_patterns` proves each.
pub const PATTERN_TESTS: &[(&str, PatternTest)] = &[
    (NO_NUL_PATTERN, has_no_nul),
    (NON_BLANK_PATTERN, is_non_blank),
    (IDEMPOTENCY_KEY_PATTERN, is_visible_ascii),
    (LIMIT_NAME_PATTERN, is_limit_name),
];

/// What each pattern used in the spec means, for the messages of a 422.
pub const PATTERN_MEANINGS: &[(&str, &str)] = &[
    (NO_NUL_PATTERN, "must not contain U+0000"),
    (NON_BLANK_PATTERN, "must not be blank or contain U+0000"),
    (
        r"^idx_[a-z0-9_-]{1,60}$",
        "must be `idx_` then 1–60 of a-z, 0-9, `_`, `-`",
    ),
    (LIMIT_NAME_PATTERN, "must be 1–64 of a-z, 0-9, `_`"),
    (IDEMPOTENCY_KEY_PATTERN, "must be visible ASCII characters"),
    (
        RATE_LIMIT_POLICY_PATTERN,
        "must list limits as `\"name\";q=<quota>;w=<window>`, comma-separated",
    ),
    (
        RATE_LIMIT_PATTERN,
        "must be `\"name\";r=<remaining>;t=<seconds to reset>`",
    ),
    (
        REQUEST_ID_PATTERN,
        "must be 1-200 of letters, digits and `._:/+=-`",
    ),
];

/// The `RateLimit-Policy` header: every limit as `"name";q=<quota>;w=<window seconds>`.
pub const RATE_LIMIT_POLICY_PATTERN: &str =
    r#"^"[a-z0-9_]{1,64}";q=[0-9]+;w=[0-9]+(, "[a-z0-9_]{1,64}";q=[0-9]+;w=[0-9]+)*$"#;

/// The `RateLimit` header: one limit as `"name";r=<remaining>;t=<seconds to reset>`.
pub const RATE_LIMIT_PATTERN: &str = r#"^"[a-z0-9_]{1,64}";r=[0-9]+;t=[0-9]+$"#;

/// The pattern of a request id (`X-Request-Id`): what the server keeps from a caller, and
/// what it makes itself.
pub const REQUEST_ID_PATTERN: &str = r"^[A-Za-z0-9._:/+=-]{1,200}$";

/// The pattern of a rate limit's name (and of other short machine names).
pub const LIMIT_NAME_PATTERN: &str = r"^[a-z0-9_]{1,64}$";

/// Whether `text` keeps [`LIMIT_NAME_PATTERN`]: 1–64 of a-z, 0-9 and `_`.
pub fn is_limit_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The pattern of an `Idempotency-Key`: visible ASCII and spaces.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[ -~]+$";

/// Whether `text` keeps [`IDEMPOTENCY_KEY_PATTERN`]: one or more of space through `~`.
pub fn is_visible_ascii(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Whether `text` keeps [`NO_NUL_PATTERN`].
pub fn has_no_nul(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether `text` keeps [`NON_BLANK_PATTERN`]. `char::is_whitespace` is exactly Unicode
/// `White_Space`, the class the pattern spells out.
pub fn is_non_blank(text: &str) -> bool {
    text.chars().any(|c| !c.is_whitespace()) && has_no_nul(text)
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::PATTERN_TESTS;

    #[test]
    fn pattern_tests_agree_with_their_patterns() {
        for (pattern, test) in PATTERN_TESTS {
            let regex = Regex::new(pattern).unwrap();
            for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
                for text in [
                    c.to_string(),
                    format!("{c}x"),
                    format!("x{c}"),
                    format!("{c}{c}"),
                ] {
                    assert_eq!(test(&text), regex.is_match(&text), "{pattern} on {text:?}");
                }
            }
            assert_eq!(
                test(""),
                regex.is_match(""),
                "{pattern} on the empty string"
            );
        }
    }
}
