//! `videovector-site`: the docs site. Guides come from `docs/*.md` (compiled in), the API
//! reference and the downloadable contract from the committed spec; everything is static
//! HTML, CSS and script, with an offline search index, so any static host can serve the
//! folder [`Site::write_to`] writes. The server serves the same files at `/`, and
//! `videovector-codegen site <dir>` writes them.

mod highlight;
mod html;
mod layout;
mod links;
pub mod markdown;
pub mod pages;
mod reference;
mod search;
pub mod snippets;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use videovector_api_spec::contract::Contract;

use crate::search::Entry;

/// One file of the built site.
pub struct SiteFile {
    /// Relative to the site's root, with `/` separators, e.g. `assets/site.css`.
    pub path: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The whole built site.
pub struct Site {
    pub files: Vec<SiteFile>,
}

const HTML: &str = "text/html; charset=utf-8";

impl Site {
    /// The file served at `path` (relative, no leading `/`; empty for the home page).
    pub fn get(&self, path: &str) -> Option<&SiteFile> {
        let path = if path.is_empty() { "index.html" } else { path };
        self.files.iter().find(|f| f.path == path)
    }

    /// Writes every file below `dir`, creating folders as needed.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        for file in &self.files {
            let target = dir.join(&file.path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&target, &file.bytes)
                .with_context(|| format!("writing {}", target.display()))?;
        }
        Ok(())
    }
}

/// Builds the site from the compiled-in guides and the committed spec.
pub fn build_committed() -> Result<Site> {
    build_from(Contract::committed(), videovector_api_spec::COMMITTED_SPEC)
}

/// Builds the site from the compiled-in guides and `spec` (the contract's JSON text).
/// Fails when a link inside the site resolves nowhere.
pub fn build(spec: &str) -> Result<Site> {
    let contract = Contract::parse(spec)
        .map_err(|e| anyhow!(e))
        .context("the spec is not a contract")?;
    build_from(&contract, spec)
}

/// Builds the site from the compiled-in guides and a contract (`spec` is its text, served
/// for download as it is).
fn build_from(contract: &Contract, spec: &str) -> Result<Site> {
    let mut files = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let tags = reference::tag_names(contract.document());
    for guide in pages::GUIDES {
        let rendered = markdown::render(guide.source);
        let file = format!("{}.html", guide.slug);
        let title = if rendered.title.is_empty() {
            guide.title
        } else {
            &rendered.title
        };
        entries.extend(search::entries_for(
            title,
            &file,
            "heading",
            &rendered.sections,
        ));
        files.push(SiteFile {
            bytes: layout::page(
                title,
                &file,
                &format!("docs/{}.md", guide.slug),
                &rendered.html,
                &tags,
            )
            .into_bytes(),
            path: file,
            content_type: HTML,
        });
    }
    for page in reference::render(contract)? {
        entries.extend(search::entries_for(
            &page.title,
            &page.file,
            "reference",
            &page.sections,
        ));
        files.push(SiteFile {
            bytes: layout::page(
                &page.title,
                &page.file,
                "api-spec/openapi.json",
                &page.html,
                &tags,
            )
            .into_bytes(),
            path: page.file,
            content_type: HTML,
        });
    }
    files.push(SiteFile {
        path: "openapi.json".into(),
        content_type: "application/json",
        bytes: spec.as_bytes().to_vec(),
    });
    files.push(SiteFile {
        path: "assets/search-index.js".into(),
        content_type: "text/javascript; charset=utf-8",
        bytes: search::script(&entries).into_bytes(),
    });
    for (path, content_type, text) in ASSETS {
        files.push(SiteFile {
            path: (*path).into(),
            content_type,
            bytes: text.as_bytes().to_vec(),
        });
    }
    let broken = links::broken_links(&files);
    if !broken.is_empty() {
        bail!("the docs site has broken links:\n  {}", broken.join("\n  "));
    }
    Ok(Site { files })
}

/// The hand-written assets every page loads.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "assets/site.css",
        "text/css; charset=utf-8",
        include_str!("../assets/site.css"),
    ),
    (
        "assets/search.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/search.js"),
    ),
    (
        "assets/page.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/page.js"),
    ),
    (
        "assets/browser-search.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/browser-search.js"),
    ),
];

/// The `docs/*.md` sources under `docs_dir` that are neither a guide nor deliberately left
/// out (so a new guide cannot be forgotten by the navigation).
pub fn unlisted_sources(docs_dir: &Path) -> Result<Vec<String>> {
    let mut unlisted = Vec::new();
    for entry in
        std::fs::read_dir(docs_dir).with_context(|| format!("reading {}", docs_dir.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".md") else {
            continue;
        };
        let listed =
            pages::GUIDES.iter().any(|g| g.slug == stem) || pages::NOT_PAGES.contains(&stem);
        if !listed {
            unlisted.push(name);
        }
    }
    unlisted.sort();
    Ok(unlisted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_site_builds_with_every_operation_and_guide() {
        let site = build_committed().expect("the site builds with no broken links");
        let operations = Contract::committed().operations();
        assert!(operations.len() > 40);
        for op in operations {
            let page = reference::tag_page(op.tag().unwrap());
            let reference = String::from_utf8_lossy(&site.get(&page).unwrap().bytes).into_owned();
            let id = &op.rule.operation_id;
            assert!(
                reference.contains(&format!(r#"<section class="operation" id="{id}">"#)),
                "{id} is missing from {page}"
            );
            for (lang, _) in snippets::LANGUAGES {
                assert!(
                    reference.contains(&format!(r#"data-example="{id}" data-lang="{lang}""#)),
                    "{id} has no {lang} example on {page}"
                );
            }
        }
        for guide in pages::GUIDES {
            assert!(site.get(&format!("{}.html", guide.slug)).is_some());
        }
        assert_eq!(site.get("").unwrap().path, "index.html");
        assert_eq!(
            site.get("openapi.json").unwrap().bytes,
            videovector_api_spec::COMMITTED_SPEC.as_bytes()
        );
    }

    #[test]
    fn every_docs_source_is_a_page_or_left_out_on_purpose() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        assert_eq!(unlisted_sources(&docs).unwrap(), Vec::<String>::new());
    }
}
