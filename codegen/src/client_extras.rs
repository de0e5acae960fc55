//! Generates what the client needs from the spec beyond progenitor's output:
//! - `client/src/generated_streams.rs`: a `stream()` method on the builder of every list
//!   the spec declares paginated (`x-pagination`), over the client's hand-written
//!   `streams::items`. progenitor makes `stream()` only for `x-dropshot-pagination`, whose
//!   parameter names differ from ours and whose later pages drop the filters, so the
//!   declarations are read here instead (see `videovector_api_spec::pagination` and `paged`);
//! - `client/src/generated_idempotent.rs`: the operations that take an `Idempotency-Key`,
//!   to which the client's retries add one.

use anyhow::{Context, Result};

use crate::client::rendered;
use videovector_api_spec::{contract::Contract, paged::paged_operations};

/// `api_key_list` → `ApiKeyList`, as progenitor names builders and typify names types.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `client/src/generated_streams.rs`.
pub fn streams(contract: &Contract) -> Result<String> {
    let paged = paged_operations(contract).map_err(anyhow::Error::msg)?;
    let mut source = String::from(
        "//! `stream()` on every paginated list's builder: the list's items, page after page \
         (see [`crate::streams`]).\n\
         use crate::{builder, streams::{items, ItemStream}, types};\n",
    );
    for operation in paged {
        let p = &operation.pagination;
        source.push_str(&format!(
            "impl<'a> builder::{builder}<'a> {{\n\
             /// Every item of `{id}`, asked for a page at a time as the stream is read; \
             each next page keeps this request's filters and `limit` and sets `{cursor}` \
             to the previous page's `{next}`.\n\
             pub fn stream(self) -> ItemStream<'a, types::{item}> {{\n\
             items(self, |request, cursor| request.{cursor}(cursor), |request| request.send(), \
             |page: types::{page}| (page.{items}, page.{next}))\n\
             }}\n}}\n",
            builder = pascal(&operation.operation_id),
            id = operation.operation_id,
            cursor = p.cursor_parameter,
            next = p.next_cursor_property,
            items = p.items_property,
            item = operation.item_schema,
            page = operation.page_schema,
        ));
    }
    let file: syn::File = syn::parse_str(&source).context("the streams are not valid Rust")?;
    Ok(rendered(&file))
}

/// `client/src/generated_idempotent.rs`.
pub fn idempotent_operations(contract: &Contract) -> Result<String> {
    let ids: Vec<String> = contract
        .operations()
        .iter()
        .filter(|o| o.rule.idempotent)
        .map(|o| format!("{:?}", o.id()))
        .collect();
    let source = format!(
        "//! The operations that take an `Idempotency-Key` header, in spec order.\n\
         pub(crate) const IDEMPOTENT_OPERATIONS: &[&str] = &[{}];\n",
        ids.join(", ")
    );
    let file: syn::File = syn::parse_str(&source).context("the list is not valid Rust")?;
    Ok(rendered(&file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_names_follow_progenitor() {
        assert_eq!(pascal("webhook_delivery_list"), "WebhookDeliveryList");
        assert_eq!(pascal("index_list"), "IndexList");
    }
}
