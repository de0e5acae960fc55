//! Index restrictions: how each operation meets a key that may touch only some indexes (its
//! `index_ids`). The contract declares it per operation (`x-index-access`), the server's
//! guard and services enforce it, and the conformance test derives its expectations from
//! it, so no second list is kept.

use crate::{ApiError, ErrorCode, Principal};

/// The extension that carries an operation's [`IndexAccess`].
pub const INDEX_ACCESS_EXTENSION: &str = "x-index-access";

/// How an operation touches indexes, as a restricted key sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexAccess {
    /// Acts on the index named by the `index_id` path parameter: another is refused with 403
    /// `index_not_allowed` before anything is looked up.
    Path,
    /// Names indexes in its request (body or page token): any other is refused with 403
    /// `index_not_allowed`.
    Named,
    /// Lists resources: only those of the key's indexes are shown.
    Listed,
    /// Acts on a resource that belongs to one index (a run): one of another index does not
    /// exist for the key (404).
    Owned,
    /// Reads or changes the whole organisation (webhooks, keys, usage), or resources that
    /// may span several indexes (connectors and their jobs, whose files each name their
    /// own): refused with 403 `index_not_allowed`.
    Organisation,
    /// Touches no index (prompts, the MCP configuration).
    Independent,
}

impl IndexAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexAccess::Path => "path",
            IndexAccess::Named => "named",
            IndexAccess::Listed => "listed",
            IndexAccess::Owned => "owned",
            IndexAccess::Organisation => "organisation",
            IndexAccess::Independent => "independent",
        }
    }

    pub fn parse(name: &str) -> Option<IndexAccess> {
        [
            IndexAccess::Path,
            IndexAccess::Named,
            IndexAccess::Listed,
            IndexAccess::Owned,
            IndexAccess::Organisation,
            IndexAccess::Independent,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// The sentence the operation's description carries.
    pub fn describe(self) -> &'static str {
        match self {
            IndexAccess::Path => {
                "**Index restriction:** a key restricted to other indexes (`index_ids`) gets \
                 403 `index_not_allowed`."
            }
            IndexAccess::Named => {
                "**Index restriction:** every index the request names must be one of a \
                 restricted key's `index_ids`, else 403 `index_not_allowed`."
            }
            IndexAccess::Listed => {
                "**Index restriction:** a restricted key sees only what belongs to its \
                 `index_ids`."
            }
            IndexAccess::Owned => {
                "**Index restriction:** for a restricted key, what belongs to an index \
                 outside its `index_ids` does not exist (404)."
            }
            IndexAccess::Organisation => {
                "**Index restriction:** a key restricted to indexes (`index_ids`) gets 403 \
                 `index_not_allowed`: this operation spans the organisation (connectors and \
                 their jobs may feed several indexes)."
            }
            IndexAccess::Independent => {
                "**Index restriction:** touches no index; a restricted key may call it."
            }
        }
    }
}

/// Every authenticated operation's access; the spec generation fails on one missing here.
pub const OPERATIONS: &[(&str, IndexAccess)] = &[
    ("api_key_list", IndexAccess::Organisation),
    ("audit_event_list", IndexAccess::Organisation),
    ("api_key_create", IndexAccess::Organisation),
    ("api_key_delete", IndexAccess::Organisation),
    ("api_key_view", IndexAccess::Organisation),
    ("api_key_update", IndexAccess::Organisation),
    ("api_key_revoke", IndexAccess::Organisation),
    ("api_key_rotate", IndexAccess::Organisation),
    ("api_key_usage", IndexAccess::Organisation),
    ("chat_completion_create", IndexAccess::Named),
    ("connector_list", IndexAccess::Organisation),
    ("connector_create", IndexAccess::Organisation),
    ("connector_delete", IndexAccess::Organisation),
    ("connector_view", IndexAccess::Organisation),
    ("connector_update", IndexAccess::Organisation),
    ("connector_sync", IndexAccess::Organisation),
    ("index_list", IndexAccess::Listed),
    ("index_create", IndexAccess::Named),
    ("index_delete", IndexAccess::Path),
    ("index_view", IndexAccess::Path),
    ("index_update", IndexAccess::Path),
    ("index_search", IndexAccess::Path),
    ("segment_ingest", IndexAccess::Path),
    ("job_list", IndexAccess::Organisation),
    ("job_view", IndexAccess::Organisation),
    ("job_cancel", IndexAccess::Organisation),
    ("job_retry", IndexAccess::Organisation),
    ("mcp_config_view", IndexAccess::Independent),
    ("organization_view", IndexAccess::Organisation),
    ("organization_update", IndexAccess::Organisation),
    ("prompt_list", IndexAccess::Independent),
    ("prompt_create", IndexAccess::Independent),
    ("prompt_delete", IndexAccess::Independent),
    ("prompt_view", IndexAccess::Independent),
    ("prompt_update", IndexAccess::Independent),
    ("rate_limit_policy_view", IndexAccess::Organisation),
    ("rate_limit_policy_update", IndexAccess::Organisation),
    ("run_list", IndexAccess::Listed),
    ("run_create", IndexAccess::Named),
    ("run_view", IndexAccess::Owned),
    ("run_cancel", IndexAccess::Owned),
    ("run_retry", IndexAccess::Owned),
    ("search_query", IndexAccess::Named),
    ("search_page_view", IndexAccess::Named),
    ("usage_report", IndexAccess::Organisation),
    ("webhook_list", IndexAccess::Organisation),
    ("webhook_create", IndexAccess::Organisation),
    ("webhook_delete", IndexAccess::Organisation),
    ("webhook_view", IndexAccess::Organisation),
    ("webhook_update", IndexAccess::Organisation),
    ("webhook_delivery_list", IndexAccess::Organisation),
    ("webhook_test", IndexAccess::Organisation),
];

/// The declared access of `operation_id`.
pub fn of(operation_id: &str) -> Option<IndexAccess> {
    OPERATIONS
        .iter()
        .find(|(id, _)| *id == operation_id)
        .map(|(_, access)| *access)
}

/// The 403 for a restricted key that names `index_id`.
pub fn not_allowed(index_id: &str) -> ApiError {
    ApiError::forbidden(
        ErrorCode::IndexNotAllowed,
        format!("this key may not touch index `{index_id}` (see its `index_ids`)"),
    )
}

/// The 403 for a restricted key calling an organisation-wide operation.
pub fn organisation_refused() -> ApiError {
    ApiError::forbidden(
        ErrorCode::IndexNotAllowed,
        "this key is restricted to some indexes (`index_ids`), and this operation spans the \
         whole organisation",
    )
}

/// Ok when the principal may touch every index of `ids`, else the 403 naming the first it
/// may not.
pub fn check_named<S: AsRef<str>>(
    who: &Principal,
    ids: impl IntoIterator<Item = S>,
) -> Result<(), ApiError> {
    match ids.into_iter().find(|id| !who.may_touch_index(id.as_ref())) {
        Some(id) => Err(not_allowed(id.as_ref())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_operations_are_listed_once() {
        for (id, access) in OPERATIONS {
            assert_eq!(IndexAccess::parse(access.as_str()), Some(*access));
            assert_eq!(
                OPERATIONS.iter().filter(|(other, _)| other == id).count(),
                1,
                "{id} is listed twice"
            );
        }
        assert_eq!(IndexAccess::parse("anything"), None);
    }
}
