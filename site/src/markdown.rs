//! Renders one Markdown guide to HTML: every heading gets an `id` (GitHub's slug rule, so
//! anchors written for the repository work on the site), links between guides point at the
//! `.html` pages, Rust examples lose the lines rustdoc hides, and the text under each
//! heading is kept for the search index.

use std::collections::HashSet;

use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A heading and the text below it, up to the next heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub level: u8,
    pub id: String,
    pub heading: String,
    pub text: String,
}

/// A rendered guide.
pub struct Rendered {
    pub html: String,
    /// The first heading's text, or empty.
    pub title: String,
    /// The text before the first heading is section 0 only when there is such text.
    pub sections: Vec<Section>,
}

/// Markdown to HTML with heading ids, rewritten links and the sections for search.
pub fn render(source: &str) -> Rendered {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events: Vec<Event> = Parser::new_ext(source, options).collect();
    hide_rustdoc_lines(&mut events);
    let sections = assign_heading_ids(&mut events);
    let mut events = highlight_code_blocks(events);
    for event in &mut events {
        if let Event::Start(Tag::Link { dest_url, .. }) = event {
            *dest_url = CowStr::from(site_link(dest_url));
        }
    }
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    // Column alignment as classes: the site's pages allow no inline style.
    for align in ["left", "center", "right"] {
        out = out.replace(
            &format!(r#"style="text-align: {align}""#),
            &format!(r#"class="align-{align}""#),
        );
    }
    Rendered {
        html: out,
        title: sections
            .iter()
            .find(|s| s.level == 1)
            .map(|s| s.heading.clone())
            .unwrap_or_default(),
        sections,
    }
}

/// Drops the lines rustdoc hides (`# ...`) from Rust code blocks: a guide whose examples
/// are compiled as doc tests (the Rust client guide) shows only what a reader types.
fn hide_rustdoc_lines(events: &mut [Event]) {
    let mut in_rust = false;
    for event in events.iter_mut() {
        match event {
            Event::Start(Tag::CodeBlock(pulldown_cmark::CodeBlockKind::Fenced(info))) => {
                in_rust = info.split(',').next() == Some("rust");
            }
            Event::End(TagEnd::CodeBlock) => in_rust = false,
            Event::Text(text) if in_rust => {
                let shown: String = text
                    .split_inclusive('\n')
                    .filter(|line| {
                        let line = line.trim_start();
                        !(line.starts_with("# ") || line.trim_end() == "#")
                    })
                    .collect();
                *text = CowStr::from(shown);
            }
            _ => {}
        }
    }
}

/// Each code block as one piece of HTML, highlighted for its language (the info string's
/// first word); the whole info string is kept in `data-info` (`sh illustration`).
fn highlight_code_blocks(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::with_capacity(events.len());
    let mut block: Option<(String, String)> = None;
    for event in events {
        match (&mut block, event) {
            (None, Event::Start(Tag::CodeBlock(kind))) => {
                let info = match kind {
                    pulldown_cmark::CodeBlockKind::Fenced(info) => info.to_string(),
                    pulldown_cmark::CodeBlockKind::Indented => String::new(),
                };
                block = Some((info, String::new()));
            }
            (Some((_, text)), Event::Text(t)) => text.push_str(&t),
            (Some(_), Event::End(TagEnd::CodeBlock)) => {
                let (info, text) = block.take().expect("inside a block");
                let language = info
                    .split([',', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let class = if language.is_empty() {
                    String::new()
                } else {
                    format!(r#" class="language-{}""#, crate::html::escape(&language))
                };
                out.push(Event::Html(CowStr::from(format!(
                    r#"<pre><code{class} data-info="{}">{}</code></pre>"#,
                    crate::html::escape(&info),
                    crate::highlight::code(&language, &text)
                ))));
                out.push(Event::Html(CowStr::from("\n")));
            }
            (Some(_), _) => {}
            (None, event) => out.push(event),
        }
    }
    out
}

/// Gives every heading an id and collects each heading's section text.
fn assign_heading_ids(events: &mut [Event]) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut used = HashSet::new();
    let mut heading_at: Option<(usize, u8, String)> = None;
    for i in 0..events.len() {
        match &events[i] {
            Event::Start(Tag::Heading { level, .. }) => {
                heading_at = Some((i, heading_number(*level), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((start, level, heading)) = heading_at.take() {
                    let id = unique(slug(&heading), &mut used);
                    if let Event::Start(Tag::Heading { id: slot, .. }) = &mut events[start] {
                        *slot = Some(CowStr::from(id.clone()));
                    }
                    sections.push(Section {
                        level,
                        id,
                        heading: heading.trim().to_string(),
                        text: String::new(),
                    });
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, heading)) = &mut heading_at {
                    heading.push_str(t);
                } else if let Some(section) = sections.last_mut() {
                    section.text.push_str(t);
                }
            }
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::TableCell
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_),
            ) if heading_at.is_none() => {
                if let Some(section) = sections.last_mut() {
                    section.text.push(' ');
                }
            }
            _ => {}
        }
    }
    for section in &mut sections {
        section.text = section
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    }
    sections
}

fn heading_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// GitHub's heading anchor: lower case, letters, digits, `-` and `_` kept, spaces to `-`.
pub fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn unique(base: String, used: &mut HashSet<String>) -> String {
    let base = if base.is_empty() {
        "section".into()
    } else {
        base
    };
    let mut candidate = base.clone();
    let mut n = 1;
    while !used.insert(candidate.clone()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

/// Where a link written for the repository points on the site: `x.md` becomes `x.html`,
/// the committed spec becomes the site's `openapi.json`; other links are kept (and the
/// site's link check refuses any that resolve nowhere).
pub fn site_link(dest: &str) -> String {
    if dest.contains("://") || dest.starts_with("mailto:") || dest.starts_with('#') {
        return dest.to_string();
    }
    let (path, fragment) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let path = if path == "../api-spec/openapi.json" || path == "openapi.json" {
        "openapi.json".to_string()
    } else if let Some(stem) = path.strip_suffix(".md") {
        format!("{stem}.html")
    } else {
        path.to_string()
    };
    match fragment {
        Some(f) => format!("{path}#{f}"),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_get_github_ids_and_sections_keep_their_text() {
        let r = render("# Keys\n\nIntro *text*.\n\n## Rotate a key\n\nCall `api_key_rotate`.\n\n## Rotate a key\n");
        assert_eq!(r.title, "Keys");
        assert!(r.html.contains(r#"<h2 id="rotate-a-key">"#), "{}", r.html);
        assert!(r.html.contains(r#"<h2 id="rotate-a-key-1">"#), "{}", r.html);
        assert_eq!(r.sections[0].text, "Intro text.");
        assert_eq!(r.sections[1].text, "Call api_key_rotate.");
    }

    #[test]
    fn rust_examples_lose_the_lines_rustdoc_hides_and_other_blocks_keep_theirs() {
        let r = render("```rust,no_run\n# async fn f() {\nlet x = 1;\n#\n# }\n```\n\n```sh\n# a comment\n```\n");
        assert!(
            r.html.contains("<span class=\"tok-keyword\">let</span> x = <span class=\"tok-number\">1</span>;\n</code>"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("async fn f"), "{}", r.html);
        assert!(
            r.html.contains(r#"<code class="language-sh" data-info="sh"><span class="tok-comment"># a comment</span>"#),
            "{}",
            r.html
        );
    }

    #[test]
    fn table_alignment_is_a_class_not_an_inline_style() {
        let r = render("| a | b |\n|:--|--:|\n| 1 | 2 |\n");
        assert!(
            r.html.contains(r#"<th class="align-left">a</th>"#),
            "{}",
            r.html
        );
        assert!(
            r.html.contains(r#"<td class="align-right">2</td>"#),
            "{}",
            r.html
        );
        assert!(!r.html.contains("style="), "{}", r.html);
    }

    #[test]
    fn links_between_guides_point_at_pages() {
        assert_eq!(site_link("api-keys.md#rotate"), "api-keys.html#rotate");
        assert_eq!(site_link("../api-spec/openapi.json"), "openapi.json");
        assert_eq!(
            site_link("https://example.com/a.md"),
            "https://example.com/a.md"
        );
        assert_eq!(site_link("#top"), "#top");
    }
}
