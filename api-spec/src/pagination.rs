//! How a list is paged, declared in the contract (`x-pagination`) so clients can walk every
//! page for their callers: the generated Rust client's `stream()` methods and the Python
//! SDK's `pages.items` are made from it.
//!
//! Every list takes `limit` and `cursor` and answers `{items, next_cursor}`; the next page is
//! the same request (its filters too: a cursor is a position, not a saved query) with
//! `cursor` set to the last page's `next_cursor`, until a page has none. progenitor's own
//! pagination (`x-dropshot-pagination`) wants other names and drops the filters after the
//! first page, so we declare ours. [`crate::paged`] reads the declarations back, checked.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The extension that carries an operation's [`Pagination`].
pub const PAGINATION_EXTENSION: &str = "x-pagination";

/// The query parameter that names a position in a list.
const CURSOR_PARAMETER: &str = "cursor";

/// How one list operation is paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// The query parameter that takes the previous page's cursor.
    pub cursor_parameter: String,
    /// The property of a page that holds the next page's cursor (absent on the last).
    pub next_cursor_property: String,
    /// The property of a page that holds its items, in order.
    pub items_property: String,
}

impl Pagination {
    fn ours() -> Pagination {
        Pagination {
            cursor_parameter: CURSOR_PARAMETER.into(),
            next_cursor_property: "next_cursor".into(),
            items_property: "items".into(),
        }
    }
}

/// Declares [`PAGINATION_EXTENSION`] on an operation that takes a `cursor` query parameter.
pub fn declare(operation: &mut Map<String, Value>) {
    let takes_cursor = operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|p| p["in"] == "query" && p["name"] == CURSOR_PARAMETER);
    if takes_cursor {
        operation.insert(
            PAGINATION_EXTENSION.into(),
            serde_json::to_value(Pagination::ours()).expect("serialisable"),
        );
    }
}
