//! Which limits hold for a request, and which limits a key or an organisation may set.
//!
//! Per family, the first of these that names any limit of it holds: the key's own, its
//! organisation's, the server's defaults. An operator's token is held to its organisation's
//! (then the server's). A key or an organisation may set limits up to the server's ceiling,
//! `max_requests_per_second` averaged over the limit's window: a day's quota may burst, a
//! second's may not exceed it.

use videovector_api_spec::{
    dto::{
        rate_limits::{RateLimit, RateLimitFamily},
        text::LimitName,
    },
    problem::FieldError,
    ApiError,
};

use super::windows::Limit;
use crate::config::RateLimitsConfig;

/// The server's part of the rules.
#[derive(Debug, Clone)]
pub struct Policy {
    defaults: Vec<RateLimit>,
    max_requests_per_second: u32,
}

impl Policy {
    /// The configured policy; refuses defaults the API itself would refuse.
    pub fn from_config(config: &RateLimitsConfig) -> anyhow::Result<Policy> {
        let mut defaults = Vec::new();
        for limit in &config.defaults {
            let family = RateLimitFamily::parse(&limit.family).ok_or_else(|| {
                anyhow::anyhow!(
                    "rate_limits.defaults: `{}` has family `{}`; use search, read or write",
                    limit.name,
                    limit.family
                )
            })?;
            let name = LimitName::try_from(limit.name.as_str()).map_err(|_| {
                anyhow::anyhow!(
                    "rate_limits.defaults: the name `{}` must be 1-64 of a-z, 0-9, `_`",
                    limit.name
                )
            })?;
            anyhow::ensure!(
                limit.quota >= 1 && (1..=86_400).contains(&limit.window_seconds),
                "rate_limits.defaults: `{}` needs a quota of at least 1 and a window of 1 to \
                 86400 seconds",
                limit.name
            );
            anyhow::ensure!(
                !defaults.iter().any(|d: &RateLimit| *d.name == *limit.name),
                "rate_limits.defaults: the name `{}` is used twice",
                limit.name
            );
            defaults.push(RateLimit {
                name,
                family,
                quota: limit.quota,
                window_seconds: limit.window_seconds,
            });
        }
        anyhow::ensure!(
            config.max_requests_per_second >= 1,
            "rate_limits.max_requests_per_second must be at least 1"
        );
        Ok(Policy {
            defaults,
            max_requests_per_second: config.max_requests_per_second,
        })
    }

    pub fn server_defaults(&self) -> &[RateLimit] {
        &self.defaults
    }

    pub fn max_requests_per_second(&self) -> u32 {
        self.max_requests_per_second
    }

    /// The limits of `family` that hold for a credential with limits `own` in an
    /// organisation with defaults `org`.
    pub fn effective<'a>(
        &'a self,
        own: &'a [RateLimit],
        org: Option<&'a [RateLimit]>,
        family: RateLimitFamily,
    ) -> Vec<Limit<'a>> {
        let holds = |limits: &&'a [RateLimit]| limits.iter().any(|l| l.family == family);
        let Some(source) = [Some(own), org, Some(self.defaults.as_slice())]
            .into_iter()
            .flatten()
            .find(holds)
        else {
            return Vec::new();
        };
        source
            .iter()
            .filter(|l| l.family == family)
            .map(Limit::of)
            .collect()
    }

    /// A 422 naming each limit of `limits` (the body's `field`) whose name is used twice or
    /// that allows more than the ceiling.
    pub fn check(&self, limits: &[RateLimit], field: &str) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        for (i, limit) in limits.iter().enumerate() {
            if limits[..i].iter().any(|l| l.name == limit.name) {
                errors.push(FieldError::body(
                    format!("/{field}/{i}/name"),
                    format!("names a limit `{}` given before it", limit.name),
                ));
            }
            let ceiling = u64::from(self.max_requests_per_second) * u64::from(limit.window_seconds);
            if u64::from(limit.quota) > ceiling {
                errors.push(FieldError::body(
                    format!("/{field}/{i}/quota"),
                    format!(
                        "allows more than this server's ceiling of {} requests per second: at \
                         most {ceiling} per {} seconds",
                        self.max_requests_per_second, limit.window_seconds
                    ),
                ));
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(ApiError::validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfiguredLimit;

    fn limit(name: &str, family: RateLimitFamily, quota: u32, window_seconds: u32) -> RateLimit {
        RateLimit {
            name: LimitName::try_from(name).unwrap(),
            family,
            quota,
            window_seconds,
        }
    }

    fn policy() -> Policy {
        Policy::from_config(&RateLimitsConfig {
            defaults: vec![
                ConfiguredLimit::new("s", "search", 100, 1),
                ConfiguredLimit::new("r", "read", 50, 1),
            ],
            max_requests_per_second: 1_000,
            usage_flush_ms: 1_000,
        })
        .unwrap()
    }

    #[test]
    fn the_key_then_the_organisation_then_the_server_family_by_family() {
        use RateLimitFamily::*;
        let policy = policy();
        let own = [limit("mine", Search, 5, 1)];
        let org = [
            limit("org_r", Read, 7, 60),
            limit("org_r_day", Read, 70, 86_400),
        ];
        fn names(limits: Vec<Limit<'_>>) -> Vec<String> {
            limits.into_iter().map(|l| l.name.to_string()).collect()
        }
        assert_eq!(names(policy.effective(&own, Some(&org), Search)), ["mine"]);
        assert_eq!(
            names(policy.effective(&own, Some(&org), Read)),
            ["org_r", "org_r_day"]
        );
        assert_eq!(names(policy.effective(&[], None, Read)), ["r"]);
        assert!(policy.effective(&own, Some(&org), Write).is_empty());
    }

    #[test]
    fn limits_past_the_ceiling_or_named_twice_are_refused_by_pointer() {
        use RateLimitFamily::*;
        let policy = policy();
        assert!(policy
            .check(&[limit("a", Search, 86_400_000, 86_400)], "rate_limits")
            .is_ok());
        let refused = policy
            .check(
                &[limit("a", Search, 1_001, 1), limit("a", Read, 1, 1)],
                "rate_limits",
            )
            .unwrap_err();
        let pointers: Vec<_> = refused
            .problem
            .errors
            .unwrap()
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(pointers, ["/rate_limits/0/quota", "/rate_limits/1/name"]);
    }

    #[test]
    fn configured_defaults_are_checked() {
        let bad = |limit: ConfiguredLimit| {
            Policy::from_config(&RateLimitsConfig {
                defaults: vec![limit],
                ..RateLimitsConfig::default()
            })
            .is_err()
        };
        assert!(bad(ConfiguredLimit::new("x", "delete", 1, 1)));
        assert!(bad(ConfiguredLimit::new("X Y", "read", 1, 1)));
        assert!(bad(ConfiguredLimit::new("x", "read", 0, 1)));
        assert!(bad(ConfiguredLimit::new("x", "read", 1, 86_401)));
    }
}
