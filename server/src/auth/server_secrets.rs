//! Server-side secrets that are generated on first start when not configured: the API key
//! pepper, the built-in issuer's signing secret and the secrets-at-rest master key. Files
//! are created with mode 0600.

use std::{io::Write, path::Path};

use base64::{engine::general_purpose::STANDARD, Engine};
use rand::RngCore;

/// The configured secret, or the one in `file` (created with 32 random bytes when absent).
pub fn load_or_create(configured: Option<&str>, file: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(value) = configured {
        anyhow::ensure!(
            value.len() >= 32,
            "{} must be at least 32 characters",
            file.display()
        );
        return Ok(value.as_bytes().to_vec());
    }
    Ok(STANDARD.decode(read_or_create(file)?.trim())?)
}

/// The text of `file`, which is created holding the base64 of 32 random bytes (mode 0600)
/// when absent.
pub fn read_or_create(file: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(file) {
        return Ok(existing);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(mut f) => {
            let text = STANDARD.encode(bytes);
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            Ok(text)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(file)?)
        }
        Err(e) => Err(e.into()),
    }
}
