//! The secret scanners whose reports of leaked keys are believed: each report's body is
//! signed with ECDSA P-256 over SHA-256 by one of the keys the server is configured with
//! (`leak_reporters`), named by the identifier the reporter sends. This is the form of
//! GitHub's secret scanning partner program; nothing is fetched from the reporter at run
//! time.

use base64::{engine::general_purpose::STANDARD, Engine};
use p256::{
    ecdsa::{signature::Verifier, Signature, VerifyingKey},
    pkcs8::DecodePublicKey,
};

use crate::config::LeakReporter;

struct ReporterKey {
    name: String,
    identifier: String,
    key: VerifyingKey,
}

/// The configured reporters' keys, parsed.
#[derive(Default)]
pub struct LeakReporters {
    keys: Vec<ReporterKey>,
}

/// Why a report was not believed (its problem's `detail`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefused {
    #[error("no leak reporter key with this identifier is configured on this server")]
    UnknownKey,
    #[error("the signature is not base64 of a DER ECDSA signature")]
    Malformed,
    #[error("the signature does not verify under the reporter's key")]
    Forged,
}

impl LeakReporters {
    /// The configured reporters; refuses a key that is not a P-256 public key.
    pub fn from_config(reporters: &[LeakReporter]) -> anyhow::Result<LeakReporters> {
        let keys = reporters
            .iter()
            .map(|r| {
                let key =
                    VerifyingKey::from_public_key_pem(r.public_key_pem.trim()).map_err(|e| {
                        anyhow::anyhow!(
                            "leak_reporters: {} ({}) is not an ECDSA P-256 public key in PEM: {e}",
                            r.name,
                            r.key_identifier
                        )
                    })?;
                Ok(ReporterKey {
                    name: r.name.clone(),
                    identifier: r.key_identifier.clone(),
                    key,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(LeakReporters { keys })
    }

    /// The name of the reporter whose key `identifier` signed `body` with `signature`
    /// (base64 DER).
    pub fn verify(
        &self,
        identifier: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<&str, ReportRefused> {
        let reporter = self
            .keys
            .iter()
            .find(|k| k.identifier == identifier)
            .ok_or(ReportRefused::UnknownKey)?;
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|_| ReportRefused::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| ReportRefused::Malformed)?;
        reporter
            .key
            .verify(body, &signature)
            .map_err(|_| ReportRefused::Forged)?;
        Ok(&reporter.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::{
        ecdsa::{signature::Signer, SigningKey},
        pkcs8::{EncodePublicKey, LineEnding},
    };

    fn reporter(name: &str, identifier: &str, key: &SigningKey) -> LeakReporter {
        LeakReporter {
            name: name.into(),
            key_identifier: identifier.into(),
            public_key_pem: key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    }

    #[test]
    fn only_a_configured_key_signing_these_bytes_is_believed() {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let other = SigningKey::random(&mut rand::rngs::OsRng);
        let reporters = LeakReporters::from_config(&[reporter("github", "k1", &key)]).unwrap();
        let body = br#"[{"token":"sk_live_x","type":"videovector_api_key"}]"#;
        let signed = |k: &SigningKey, bytes: &[u8]| {
            let signature: Signature = k.sign(bytes);
            STANDARD.encode(signature.to_der().as_bytes())
        };
        assert_eq!(
            reporters.verify("k1", &signed(&key, body), body),
            Ok("github")
        );
        assert_eq!(
            reporters.verify("k2", &signed(&key, body), body),
            Err(ReportRefused::UnknownKey)
        );
        assert_eq!(
            reporters.verify("k1", &signed(&other, body), body),
            Err(ReportRefused::Forged)
        );
        let mut changed = body.to_vec();
        changed[5] ^= 1;
        assert_eq!(
            reporters.verify("k1", &signed(&key, body), &changed),
            Err(ReportRefused::Forged)
        );
        assert_eq!(
            reporters.verify("k1", "not base64!", body),
            Err(ReportRefused::Malformed)
        );
        assert!(LeakReporters::from_config(&[LeakReporter {
            name: "x".into(),
            key_identifier: "y".into(),
            public_key_pem: "not a key".into(),
        }])
        .is_err());
    }
}
