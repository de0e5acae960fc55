//! `videovector-codegen`: regenerates everything derived from the API declarations: the
//! committed spec (`api-spec/openapi.json`), the progenitor client
//! (`client/src/generated.rs`) and the docs site's reference (`docs/reference.md`,
//! `docs/openapi.json`) and errors guide (`docs/errors.md`). `check` regenerates in memory and fails when any file differs.

pub mod client;
pub mod errors;
pub mod reference;

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
        ("docs/errors.md", errors::generate()?),
    ])
}

/// Entry point of the `videovector-codegen` binary.
pub fn main_with_args(mode: &str) -> ExitCode {
    let result = match mode {
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

fn check() -> Result<bool> {
    let stale = stale_files()?;
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
