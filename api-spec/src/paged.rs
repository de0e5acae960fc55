//! The paginated operations of a contract, read back from their `x-pagination`
//! declarations ([`crate::pagination`]) and checked against their answers' schemas: what
//! the client generators walk.

use serde_json::Value;

use crate::{
    contract::{Contract, Operation},
    pagination::{Pagination, PAGINATION_EXTENSION},
};

/// The pagination `operation` declares, if any.
pub fn pagination_of(operation: &Operation) -> Option<Pagination> {
    serde_json::from_value(operation.extensions.get(PAGINATION_EXTENSION)?.clone()).ok()
}

/// One paginated operation as a client walks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagedOperation {
    pub operation_id: String,
    pub pagination: Pagination,
    /// The schema name of the page (`IndexPage`).
    pub page_schema: String,
    /// The schema name of one item (`Index`).
    pub item_schema: String,
}

/// Every paginated operation of `contract`, checked: each answers 200 with a page whose
/// items are an array of one named schema and whose next cursor is an optional string.
pub fn paged_operations(contract: &Contract) -> Result<Vec<PagedOperation>, String> {
    let mut paged = Vec::new();
    for operation in contract.operations() {
        let Some(pagination) = pagination_of(operation) else {
            continue;
        };
        let id = operation.id();
        let schema_name = |schema: &Value| {
            schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(str::to_string)
        };
        let page_schema = operation
            .response_for(200)
            .and_then(|r| r.content.first())
            .and_then(|m| schema_name(&m.schema))
            .ok_or_else(|| format!("{id}: its 200 answer is not a named page schema"))?;
        let page = contract
            .lookup(&format!("#/components/schemas/{page_schema}"))
            .ok_or_else(|| format!("{id}: no schema {page_schema}"))?;
        let items = &page["properties"][&pagination.items_property];
        let item_schema = (items["type"] == "array")
            .then(|| schema_name(&items["items"]))
            .flatten()
            .ok_or_else(|| format!("{id}: {page_schema} has no array of named items"))?;
        let next = &page["properties"][&pagination.next_cursor_property];
        let required = page["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == &pagination.next_cursor_property));
        if next["type"] != "string" || required {
            return Err(format!(
                "{id}: {page_schema}.{} must be an optional string",
                pagination.next_cursor_property
            ));
        }
        let cursor = operation
            .parameters
            .iter()
            .find(|p| p.name == pagination.cursor_parameter);
        if cursor.is_none_or(|p| p.required) {
            return Err(format!(
                "{id}: `{}` must be an optional parameter",
                pagination.cursor_parameter
            ));
        }
        paged.push(PagedOperation {
            operation_id: id.to_string(),
            pagination,
            page_schema,
            item_schema,
        });
    }
    Ok(paged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_of_the_committed_spec_is_declared_and_walkable() {
        let paged = paged_operations(Contract::committed()).expect("walkable");
        let ids: Vec<&str> = paged.iter().map(|p| p.operation_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "api_key_list",
                "audit_event_list",
                "connector_list",
                "index_list",
                "job_list",
                "prompt_list",
                "run_list",
                "webhook_list",
                "webhook_delivery_list",
            ]
        );
        let index_list = paged.iter().find(|p| p.operation_id == "index_list");
        assert_eq!(
            index_list.map(|p| (p.page_schema.as_str(), p.item_schema.as_str())),
            Some(("IndexPage", "Index"))
        );
        // Every operation named `*_list` pages: a new list cannot ship without it.
        for operation in Contract::committed().operations() {
            if operation.id().ends_with("_list") {
                assert!(
                    ids.contains(&operation.id()),
                    "{} is not paged",
                    operation.id()
                );
            }
        }
    }

    #[test]
    fn a_page_without_an_optional_next_cursor_is_refused() {
        let mut document: Value = serde_json::from_str(crate::COMMITTED_SPEC).unwrap();
        document["components"]["schemas"]["IndexPage"]["required"] =
            serde_json::json!(["items", "next_cursor"]);
        let contract = Contract::from_document(document).unwrap();
        let err = paged_operations(&contract).unwrap_err();
        assert!(err.contains("index_list: IndexPage.next_cursor"), "{err}");
    }
}
