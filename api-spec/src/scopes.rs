//! The four public scopes and their hierarchy: `search` < `read` < `write` < `admin`.

use poem_openapi::{registry::MetaOAuthScope, Enum, OAuthScopes};

/// A public scope. A credential holding a scope satisfies every requirement at or below it.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[oai(rename_all = "lowercase")]
pub enum Scope {
    /// Search, retrieval, and chat retrieval workflows.
    Search,
    /// Read workflow resources and inspect results.
    Read,
    /// Create or update prompts, runs, connectors, jobs, and webhooks.
    Write,
    /// Delete higher-risk resources.
    Admin,
}

impl Scope {
    /// Every scope, lowest first.
    pub const ALL: [Scope; 4] = [Scope::Search, Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Search => "search",
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name; unknown names are `None` (callers decide whether to ignore them).
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a credential holding `self` satisfies a requirement of `required`.
    pub fn satisfies(self, required: Scope) -> bool {
        self >= required
    }

    /// The highest scope in a list (the one that decides what the list allows).
    pub fn highest(scopes: impl IntoIterator<Item = Scope>) -> Option<Scope> {
        scopes.into_iter().max()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `#[oai(scope = "Scope::Write")]` on a security parameter writes the scope into that
/// operation's security requirement; `crate::spec` then moves it into `x-required-scope`
/// (OpenAPI 3.0 requires empty scope arrays for apiKey and http schemes).
impl OAuthScopes for Scope {
    fn meta() -> Vec<MetaOAuthScope> {
        Scope::ALL
            .into_iter()
            .map(|s| MetaOAuthScope {
                name: s.as_str(),
                description: None,
            })
            .collect()
    }

    fn name(&self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_is_admin_over_write_over_read_over_search() {
        assert!(Scope::Admin.satisfies(Scope::Write));
        assert!(Scope::Write.satisfies(Scope::Read));
        assert!(Scope::Read.satisfies(Scope::Search));
        assert!(!Scope::Search.satisfies(Scope::Read));
        assert!(!Scope::Write.satisfies(Scope::Admin));
        assert_eq!(
            Scope::highest([Scope::Read, Scope::Search]),
            Some(Scope::Read)
        );
    }

    #[test]
    fn names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("root"), None);
    }
}
