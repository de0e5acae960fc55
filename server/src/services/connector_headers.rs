//! A connector's secret request headers, bound to the origins they were set for.
//!
//! Header values (an `Authorization` token, say) are meant for the hosts the admin named
//! when setting them. So the stored form keeps, beside the values, the origins
//! (`scheme://host:port`) of the connector's files at that moment: a file whose URL is on
//! another origin is fetched without them, and a PATCH that moves files to a new origin
//! without giving the headers again drops them. The stored form is sealed
//! ([`crate::secrets_at_rest`]).

use std::collections::{BTreeMap, BTreeSet};

use poem::http::{HeaderName, HeaderValue};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use videovector_api_spec::{ApiError, ErrorCode};

use crate::db::records::StoredFile;
use crate::secrets_at_rest::{places, Keyring, OpenError};

/// At most this many headers per connector.
const MAX_HEADERS: usize = 20;

/// The stored form of a connector's headers.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct BoundHeaders {
    /// Origins the values may be sent to.
    pub origins: BTreeSet<String>,
    /// Header name to secret value.
    pub values: BTreeMap<String, String>,
}

/// `scheme://host:port` of a URL (with the scheme's default port spelled out), or `None`
/// for a URL that does not parse (such a file is refused before it is stored).
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let port = parsed.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", parsed.scheme()))
}

impl BoundHeaders {
    /// `values` bound to the origins of `files` (none when there are no values).
    fn bound_to(values: BTreeMap<String, String>, files: &[StoredFile]) -> Self {
        let origins = if values.is_empty() {
            BTreeSet::new()
        } else {
            files.iter().filter_map(|f| origin_of(&f.url)).collect()
        };
        BoundHeaders { origins, values }
    }

    /// Checks requested headers and binds them to the origins of `files`.
    pub fn bind(values: BTreeMap<String, String>, files: &[StoredFile]) -> Result<Self, ApiError> {
        if values.len() > MAX_HEADERS {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidHeaders,
                format!("at most {MAX_HEADERS} headers"),
            ));
        }
        for (name, value) in &values {
            if HeaderName::try_from(name.as_str()).is_err()
                || HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(ApiError::unprocessable(
                    ErrorCode::InvalidHeaders,
                    format!("header `{name}` is not a valid HTTP header"),
                ));
            }
        }
        Ok(Self::bound_to(values, files))
    }

    /// Whether every file is on an origin the values were set for (trivially, when there
    /// are no values).
    pub fn cover(&self, files: &[StoredFile]) -> bool {
        self.values.is_empty()
            || files
                .iter()
                .all(|f| origin_of(&f.url).is_some_and(|o| self.origins.contains(&o)))
    }

    /// The headers to send with a fetch of `url`: all of them on a bound origin, none
    /// elsewhere.
    pub fn for_url(&self, url: &str) -> impl Iterator<Item = (&String, &String)> {
        let allowed = origin_of(url).is_some_and(|o| self.origins.contains(&o));
        self.values.iter().filter(move |_| allowed)
    }

    /// Opens a connector's sealed headers.
    pub fn open(
        keyring: &Keyring,
        connector_id: &str,
        sealed: &str,
        files: &[StoredFile],
    ) -> Result<Self, OpenError> {
        let stored = keyring.open_str(&places::connector_headers(connector_id), sealed)?;
        Ok(Self::parse(&stored, files))
    }

    /// The sealed form stored in `connectors.headers`.
    pub fn seal(&self, keyring: &Keyring, connector_id: &str) -> String {
        keyring.seal_str(&places::connector_headers(connector_id), &self.to_stored())
    }

    /// Reads the stored form. Before headers were bound, the column held the bare map;
    /// such values are bound to the origins of the connector's files as they are now, the
    /// files they were set for.
    pub fn parse(stored: &str, files: &[StoredFile]) -> Self {
        if let Ok(bound) = serde_json::from_str::<BoundHeaders>(stored) {
            return bound;
        }
        let legacy: BTreeMap<String, String> = serde_json::from_str(stored).unwrap_or_default();
        Self::bound_to(legacy, files)
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str) -> StoredFile {
        StoredFile {
            url: url.into(),
            media_id: "m".into(),
            index_id: "idx".into(),
            format: "webvtt".into(),
            status: "pending".into(),
            segments: 0,
            error: None,
        }
    }

    fn token() -> BTreeMap<String, String> {
        BTreeMap::from([("Authorization".to_string(), "Bearer s3cret".to_string())])
    }

    #[test]
    fn origins_spell_out_the_default_port() {
        assert_eq!(
            origin_of("https://Cdn.Example/a.vtt").as_deref(),
            Some("https://cdn.example:443")
        );
        assert_eq!(
            origin_of("http://cdn.example:8080/a.vtt").as_deref(),
            Some("http://cdn.example:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn values_go_only_to_the_origins_they_were_set_for() {
        let bound = BoundHeaders::bind(token(), &[file("https://cdn.example/a.vtt")]).unwrap();
        assert_eq!(bound.for_url("https://cdn.example/b.vtt").count(), 1);
        assert_eq!(bound.for_url("https://evil.example/a.vtt").count(), 0);
        assert_eq!(bound.for_url("http://cdn.example/a.vtt").count(), 0);
        assert_eq!(bound.for_url("https://cdn.example:8443/a.vtt").count(), 0);
    }

    #[test]
    fn values_cover_only_files_on_their_origins() {
        let bound = BoundHeaders::bind(token(), &[file("https://cdn.example/a.vtt")]).unwrap();
        assert!(bound.cover(&[file("https://cdn.example/other.vtt")]));
        assert!(!bound.cover(&[
            file("https://cdn.example/a.vtt"),
            file("https://evil.example/a.vtt")
        ]));
        // Without values there is nothing to leak.
        let none = BoundHeaders::bind(BTreeMap::new(), &[]).unwrap();
        assert!(none.cover(&[file("https://evil.example/a.vtt")]));
    }

    #[test]
    fn the_bare_map_of_before_binds_to_the_current_files() {
        let files = [file("https://cdn.example/a.vtt")];
        let legacy = BoundHeaders::parse(r#"{"Authorization":"Bearer s3cret"}"#, &files);
        assert_eq!(legacy, BoundHeaders::bind(token(), &files).unwrap());
        let current = legacy.to_stored();
        assert_eq!(BoundHeaders::parse(&current, &[]), legacy);
    }
}
