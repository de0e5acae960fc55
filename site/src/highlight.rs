//! Syntax highlighting done when the site is built: code becomes escaped HTML whose tokens
//! are `<span class="tok-…">` (keyword, string, number, comment, property, variable), so the
//! pages need no highlighting script and the stylesheet colours them for the light and the
//! dark theme. A small lexer per family of languages, not a parser: it knows comments,
//! strings, numbers, keywords, JSON keys and shell variables, which is what our examples
//! hold.

use crate::html::escape;

/// The rules for one language.
struct Language {
    line_comment: Option<&'static str>,
    /// Quote characters that start a string.
    quotes: &'static [char],
    keywords: &'static [&'static str],
    /// `$NAME` and `${NAME}` are variables.
    dollar_variables: bool,
}

const SHELL: Language = Language {
    line_comment: Some("#"),
    quotes: &['"', '\''],
    keywords: &[
        "if", "then", "else", "fi", "for", "in", "do", "done", "while", "until", "export", "set",
        "case", "esac", "function", "return", "local",
    ],
    dollar_variables: true,
};
const PYTHON: Language = Language {
    line_comment: Some("#"),
    quotes: &['"', '\''],
    keywords: &[
        "import", "from", "as", "def", "return", "if", "elif", "else", "for", "in", "while",
        "with", "async", "await", "try", "except", "finally", "raise", "class", "None", "True",
        "False", "and", "or", "not", "is", "lambda", "pass", "break", "continue", "yield",
    ],
    dollar_variables: false,
};
const RUST: Language = Language {
    line_comment: Some("//"),
    quotes: &['"'],
    keywords: &[
        "let", "mut", "fn", "async", "await", "use", "pub", "struct", "enum", "impl", "match",
        "if", "else", "for", "in", "while", "loop", "return", "Some", "None", "Ok", "Err", "true",
        "false", "move", "ref", "as", "mod", "crate", "self", "Self", "where", "dyn", "type",
        "const", "static",
    ],
    dollar_variables: false,
};
const JSON: Language = Language {
    line_comment: None,
    quotes: &['"'],
    keywords: &["true", "false", "null"],
    dollar_variables: false,
};
const CONFIG: Language = Language {
    line_comment: Some("#"),
    quotes: &['"', '\''],
    keywords: &["true", "false", "null"],
    dollar_variables: false,
};

fn language(name: &str) -> Option<&'static Language> {
    match name {
        "sh" | "bash" | "shell" | "console" => Some(&SHELL),
        "python" | "py" => Some(&PYTHON),
        "rust" => Some(&RUST),
        "json" => Some(&JSON),
        "toml" | "yaml" | "yml" => Some(&CONFIG),
        _ => None,
    }
}

/// `text` as escaped, highlighted HTML for the language named by a code block's info
/// string (`sh`, `python`, `rust`, `json`, `toml`, ...); escaped only for any other.
pub fn code(language_name: &str, text: &str) -> String {
    let Some(rules) = language(language_name) else {
        return escape(text);
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(marker) = rules.line_comment {
            let at_marker = marker
                .chars()
                .enumerate()
                .all(|(k, m)| chars.get(i + k) == Some(&m));
            let starts_comment =
                at_marker && (marker != "#" || i == 0 || chars[i - 1].is_whitespace());
            if starts_comment {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                span(&mut out, "comment", &chars[i..end]);
                i = end;
                continue;
            }
        }
        if rules.quotes.contains(&c) {
            let end = string_end(&chars, i, rules.dollar_variables && c == '\'');
            let after = chars[end..].iter().find(|c| !c.is_whitespace());
            let kind = if after == Some(&':') && rules.line_comment.is_none() {
                "property"
            } else {
                "string"
            };
            span(&mut out, kind, &chars[i..end]);
            i = end;
            continue;
        }
        if rules.dollar_variables && c == '$' {
            let end = variable_end(&chars, i);
            if end > i + 1 {
                span(&mut out, "variable", &chars[i..end]);
                i = end;
                continue;
            }
        }
        let follows_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c.is_ascii_digit() && !follows_word {
            let end = chars[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_'))
                .map_or(chars.len(), |p| i + p);
            span(&mut out, "number", &chars[i..end]);
            i = end;
            continue;
        }
        if (c.is_alphabetic() || c == '_') && !follows_word {
            let end = chars[i..]
                .iter()
                .position(|c| !(c.is_alphanumeric() || *c == '_'))
                .map_or(chars.len(), |p| i + p);
            let word: String = chars[i..end].iter().collect();
            if rules.keywords.contains(&word.as_str()) {
                span(&mut out, "keyword", &chars[i..end]);
            } else {
                out.push_str(&escape(&word));
            }
            i = end;
            continue;
        }
        out.push_str(&escape(&c.to_string()));
        i += 1;
    }
    out
}

/// The index after a string starting at `start` (a backslash escapes the next character,
/// except in a raw shell string).
fn string_end(chars: &[char], start: usize, raw: bool) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if !raw => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index after `$NAME` or `${...}` starting at `start`.
fn variable_end(chars: &[char], start: usize) -> usize {
    if chars.get(start + 1) == Some(&'{') {
        return chars[start..]
            .iter()
            .position(|&c| c == '}')
            .map_or(start + 1, |p| start + p + 1);
    }
    chars[start + 1..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(chars.len(), |p| start + 1 + p)
}

fn span(out: &mut String, kind: &str, text: &[char]) {
    let text: String = text.iter().collect();
    out.push_str(&format!(
        r#"<span class="tok-{kind}">{}</span>"#,
        escape(&text)
    ));
}

#[cfg(test)]
mod tests {
    use super::code;

    #[test]
    fn marks_strings_keywords_numbers_comments_and_keys() {
        assert_eq!(
            code("python", "import os  # x\nn = 3"),
            r#"<span class="tok-keyword">import</span> os  <span class="tok-comment"># x</span>
n = <span class="tok-number">3</span>"#
        );
        assert_eq!(
            code("json", r#"{"a": "b<"}"#),
            r#"{<span class="tok-property">&quot;a&quot;</span>: <span class="tok-string">&quot;b&lt;&quot;</span>}"#
        );
        assert_eq!(
            code("sh", r#"curl "$URL/x" -d '{"a":1}'"#),
            r#"curl <span class="tok-string">&quot;$URL/x&quot;</span> -d <span class="tok-string">&#39;{&quot;a&quot;:1}&#39;</span>"#
        );
        assert_eq!(
            code("sh", "echo $API # done"),
            r#"echo <span class="tok-variable">$API</span> <span class="tok-comment"># done</span>"#
        );
    }

    #[test]
    fn leaves_unknown_languages_and_words_inside_identifiers_alone() {
        assert_eq!(code("text", "<if>"), "&lt;if&gt;");
        assert_eq!(
            code("rust", "let x1 = y2;"),
            r#"<span class="tok-keyword">let</span> x1 = y2;"#
        );
    }

    #[test]
    fn the_text_is_unchanged_once_the_markup_is_removed() {
        let source = "let a = \"q\\\"uote\"; // c\nfn b() {}\n";
        let highlighted = code("rust", source);
        let stripped = regex::Regex::new("<[^>]+>")
            .unwrap()
            .replace_all(&highlighted, "");
        let unescaped = stripped
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        assert_eq!(unescaped, source);
    }
}
