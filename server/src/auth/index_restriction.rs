//! Index restrictions at the door: for a key that may touch only some indexes
//! (`index_ids`), the guard refuses, before anything is looked up, an operation whose spec
//! says it spans the organisation, and one whose `index_id` path parameter names another
//! index. What the door cannot see (indexes named in a body or a page token, lists, and the
//! resources of an index) the services hold, by the same declaration.

use percent_encoding::percent_decode_str;
use videovector_api_spec::{
    index_access::{self, IndexAccess},
    rules::OperationRule,
    ApiError, Principal,
};

/// The path parameter that names an index.
const INDEX_PARAMETER: &str = "{index_id}";

/// Ok unless `who` is restricted and the operation `rule`, called at `path` (below the base
/// path), reaches past the restriction.
pub fn check(who: &Principal, rule: &OperationRule, path: &str) -> Result<(), ApiError> {
    if who.index_restriction().is_none() {
        return Ok(());
    }
    match rule.index_access {
        Some(IndexAccess::Organisation) => Err(index_access::organisation_refused()),
        Some(IndexAccess::Path) => {
            let index_id = index_in_path(&rule.path, path).unwrap_or_default();
            match who.may_touch_index(&index_id) {
                true => Ok(()),
                false => Err(index_access::not_allowed(&index_id)),
            }
        }
        _ => Ok(()),
    }
}

/// The `index_id` of `path` as the template `template` places it, percent-decoded as the
/// router will decode it.
fn index_in_path(template: &str, path: &str) -> Option<String> {
    let position = template
        .trim_start_matches('/')
        .split('/')
        .position(|segment| segment == INDEX_PARAMETER)?;
    let segment = path.trim_start_matches('/').split('/').nth(position)?;
    Some(percent_decode_str(segment).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_read_where_the_template_puts_it() {
        let template = "/indexes/{index_id}/search";
        assert_eq!(
            index_in_path(template, "/indexes/idx_a/search").as_deref(),
            Some("idx_a")
        );
        assert_eq!(
            index_in_path(template, "/indexes/idx%5Fa/search").as_deref(),
            Some("idx_a")
        );
        assert_eq!(index_in_path("/jobs/{job_id}", "/jobs/job_1"), None);
    }
}
