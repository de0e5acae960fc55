//! `videovector-codegen`: regenerates everything derived from the API declarations: the
//! committed spec (`api-spec/openapi.json`), the progenitor client
//! (`client/src/generated.rs`) and its streams and idempotent operations
//! (`client/src/generated_{streams,idempotent}.rs`), its httpmock extension
//! (`client-mock/src/generated.rs`) and CLI (`cli/src/generated.rs`), every operation's
//! Rust example as a program (`examples/snippets/src/generated.rs`), the Markdown reference (`docs/reference.md`), the errors
//! guide (`docs/errors.md`) and the Python SDK (`sdks/python`). `check` regenerates in
//! memory (the SDK in a temporary folder) and fails when any file differs, and builds the
//! docs site, which fails on a broken internal link or a guide missing from its navigation.
//! `check` also holds the spec to the latest released contract (`api-spec/released/`),
//! failing on a breaking change without a new major version ([`compatibility`]), and
//! `generate` writes the changelog page from the releases ([`changelog`]).
//! `site <dir>` writes the docs site into a folder any static host can serve.

pub mod changelog;
pub mod client;
pub mod client_extras;
pub mod compatibility;
pub mod errors;
pub mod python_sdk;
pub mod reference;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};
use videovector_api_spec::contract::Contract;

/// The one command that brings every generated file up to date.
pub const REGENERATE: &str = "cargo run -p videovector-codegen -- generate";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen lives in the workspace")
        .to_path_buf()
}

/// Every generated file, as (path relative to the workspace root, contents).
fn outputs() -> Result<Vec<(&'static str, String)>> {
    let spec = videovector_api_spec::spec::generate();
    let spec_value: serde_json::Value = serde_json::from_str(&spec)?;
    let contract = Contract::from_document(spec_value.clone()).map_err(anyhow::Error::msg)?;
    let releases = changelog::releases(&workspace_root())?;
    Ok(vec![
        ("client/src/generated.rs", client::generate(&spec_value)?),
        (
            "client/src/generated_streams.rs",
            client_extras::streams(&contract)?,
        ),
        (
            "client/src/generated_idempotent.rs",
            client_extras::idempotent_operations(&contract)?,
        ),
        ("client-mock/src/generated.rs", client::mock(&spec_value)?),
        ("cli/src/generated.rs", client::cli(&spec_value)?),
        (
            "examples/snippets/src/generated.rs",
            client::snippets_program(&contract),
        ),
        ("api-spec/openapi.json", spec),
        ("docs/reference.md", reference::generate(&spec_value)?),
        ("docs/errors.md", errors::generate()?),
        (
            "docs/changelog.md",
            changelog::generate(&releases, &contract)?,
        ),
    ])
}

/// Entry point of the `videovector-codegen` binary.
pub fn main_with_args(args: &[String]) -> ExitCode {
    let result = match args {
        [mode] if mode == "generate" => generate(),
        [mode] if mode == "check" => check(),
        [mode, dir] if mode == "site" => write_site(Path::new(dir)),
        _ => {
            eprintln!("usage: videovector-codegen generate | check | site <dir>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate() -> Result<bool> {
    let root = workspace_root();
    for (path, contents) in outputs()? {
        let target = root.join(path);
        std::fs::write(&target, contents).with_context(|| format!("writing {path}"))?;
        println!("wrote {path}");
    }
    python_sdk::generate(&root, &committed_spec(&root)?)?;
    println!("wrote {}", python_sdk::SDK_DIR);
    Ok(true)
}

fn committed_spec(root: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(root.join("api-spec/openapi.json"))?;
    Ok(serde_json::from_str(&text)?)
}

/// Writes the docs site, built from the committed spec and the guides, into `dir`.
fn write_site(dir: &Path) -> Result<bool> {
    let site = videovector_site::build_committed()?;
    site.write_to(dir)?;
    println!(
        "wrote {} files of the docs site to {}",
        site.files.len(),
        dir.display()
    );
    Ok(true)
}

/// The generated files that differ from what the declarations produce now.
pub fn stale_files() -> Result<Vec<&'static str>> {
    let root = workspace_root();
    Ok(outputs()?
        .into_iter()
        .filter(|(path, contents)| {
            std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(contents.as_str())
        })
        .map(|(path, _)| path)
        .collect())
}

/// The breaking changes of the declarations' contract against the latest released one that
/// its version does not allow (empty: compatible), and that release's version.
pub fn unreleased_breaks() -> Result<(String, Vec<compatibility::Change>)> {
    let releases = changelog::releases(&workspace_root())?;
    let latest = releases.last().context("no release")?;
    let spec: serde_json::Value = serde_json::from_str(&videovector_api_spec::spec::generate())?;
    let current = Contract::from_document(spec).map_err(anyhow::Error::msg)?;
    let breaking = compatibility::gate(&latest.contract, &current)
        .err()
        .unwrap_or_default();
    Ok((latest.version.clone(), breaking))
}

/// Holds the declarations' contract to the latest released one: `false` (with every
/// breaking change printed) when it breaks it without a new major version.
fn compatible_with_release() -> Result<bool> {
    let (version, breaking) = unreleased_breaks()?;
    if breaking.is_empty() {
        return Ok(true);
    }
    eprintln!(
        "the spec breaks clients of the released {version} (keep the old shape, or raise the \
         major version):"
    );
    for change in breaking {
        eprintln!("- {}: {}", change.operation, change.what);
    }
    Ok(false)
}

fn check() -> Result<bool> {
    let root = workspace_root();
    let compatible = compatible_with_release()?;
    let mut stale: Vec<String> = stale_files()?.into_iter().map(String::from).collect();
    stale.extend(python_sdk::stale(&root, &committed_spec(&root)?)?);
    let site = videovector_site::build_committed()?;
    let unlisted = videovector_site::unlisted_sources(&root.join("docs"))?;
    for name in &unlisted {
        eprintln!("docs/{name} is not in the site's navigation (site/src/pages.rs)");
    }
    if compatible && stale.is_empty() && unlisted.is_empty() {
        println!(
            "all generated files are up to date; the docs site builds ({} files, no broken links)",
            site.files.len()
        );
        return Ok(true);
    }
    for path in &stale {
        eprintln!("stale: {path}");
    }
    if !stale.is_empty() {
        eprintln!("run `{REGENERATE}` and commit the result");
    }
    Ok(false)
}
