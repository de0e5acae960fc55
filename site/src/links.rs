//! The site's own link check: every `href` and `src` that is not an outside address must
//! name a file of the site, and any `#fragment` an `id` on that page.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use crate::SiteFile;

/// Every broken internal link, as "page: link".
pub fn broken_links(files: &[SiteFile]) -> Vec<String> {
    let link = Regex::new(r#"(?:href|src)="([^"]*)""#).expect("static pattern");
    let id = Regex::new(r#"\bid="([^"]*)""#).expect("static pattern");
    let ids: HashMap<&str, HashSet<String>> = files
        .iter()
        .filter(|f| f.path.ends_with(".html"))
        .map(|f| {
            let text = String::from_utf8_lossy(&f.bytes);
            let set = id.captures_iter(&text).map(|c| unescape(&c[1])).collect();
            (f.path.as_str(), set)
        })
        .collect();
    let paths: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut broken = Vec::new();
    for file in files.iter().filter(|f| f.path.ends_with(".html")) {
        let text = String::from_utf8_lossy(&file.bytes);
        for capture in link.captures_iter(&text) {
            let target = unescape(&capture[1]);
            if target.contains("://")
                || target.starts_with("mailto:")
                || target.starts_with("data:")
            {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let path = if path.is_empty() {
                file.path.as_str()
            } else {
                path
            };
            let resolves = paths.contains(path)
                && fragment.is_none_or(|f| ids.get(path).is_some_and(|set| set.contains(f)));
            if !resolves {
                broken.push(format!("{}: {target}", file.path));
            }
        }
    }
    broken
}

fn unescape(attr: &str) -> String {
    attr.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(path: &str, html: &str) -> SiteFile {
        SiteFile {
            path: path.into(),
            content_type: "text/html; charset=utf-8",
            bytes: html.as_bytes().to_vec(),
        }
    }

    #[test]
    fn missing_pages_and_anchors_are_reported_and_outside_links_are_not() {
        let files = [
            page(
                "a.html",
                r##"<a href="b.html#here">ok</a><a href="b.html#gone">x</a><a href="c.html">x</a><a href="https://x.test/y">ok</a><a href="#top">x</a>"##,
            ),
            page("b.html", r#"<h2 id="here">Here</h2>"#),
        ];
        assert_eq!(
            broken_links(&files),
            ["a.html: b.html#gone", "a.html: c.html", "a.html: #top"]
        );
    }
}
