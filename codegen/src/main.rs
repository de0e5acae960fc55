//! `videovector-codegen`: regenerates everything derived from the API declarations: the
//! committed spec (`api-spec/openapi.json`), the progenitor client
//! (`client/src/generated.rs`) and the docs site's reference (`docs/reference.md`,
//! `docs/openapi.json`). `check` regenerates in memory and fails when any file differs.

mod client;
mod reference;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};

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
    Ok(vec![
        ("api-spec/openapi.json", spec.clone()),
        ("client/src/generated.rs", client::generate(&spec_value)?),
        ("docs/openapi.json", spec),
        ("docs/reference.md", reference::generate(&spec_value)?),
    ])
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = match mode.as_str() {
        "generate" => generate(),
        "check" => check(),
        _ => {
            eprintln!("usage: videovector-codegen generate|check");
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
    Ok(true)
}

fn check() -> Result<bool> {
    let root = workspace_root();
    let stale: Vec<&str> = outputs()?
        .into_iter()
        .filter(|(path, contents)| {
            std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(contents.as_str())
        })
        .map(|(path, _)| path)
        .collect();
    if stale.is_empty() {
        println!("all generated files are up to date");
        return Ok(true);
    }
    for path in &stale {
        eprintln!("stale: {path}");
    }
    eprintln!("run `{REGENERATE}` and commit the result");
    Ok(false)
}
