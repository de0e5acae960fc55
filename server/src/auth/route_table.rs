//! The enforcement table: each operation's rule, read from the committed spec at start-up,
//! and the matching of a request's method and path to it.

use poem::http::Method;
use videovector_api_spec::{
    contract::{Contract, Segment},
    rules::OperationRule,
};

struct Entry {
    method: Method,
    /// `Some(literal)` or `None` for a `{param}` segment.
    segments: Vec<Option<String>>,
    rule: OperationRule,
}

pub struct RouteTable {
    entries: Vec<Entry>,
}

impl RouteTable {
    /// The table of `contract`'s operations.
    pub fn from_contract(contract: &Contract) -> Self {
        let entries = contract
            .operations()
            .iter()
            .map(|operation| Entry {
                method: operation.method.clone(),
                segments: operation
                    .template
                    .iter()
                    .map(|segment| match segment {
                        Segment::Literal(literal) => Some(literal.clone()),
                        Segment::Param(_) => None,
                    })
                    .collect(),
                rule: operation.rule.clone(),
            })
            .collect();
        RouteTable { entries }
    }

    /// The rule of the operation at `path` (below the base path), preferring literal
    /// segments over parameters.
    pub fn find(&self, method: &Method, path: &str) -> Option<&OperationRule> {
        self.at_path(path)
            .filter(|e| e.method == method)
            .max_by_key(|e| e.segments.iter().filter(|s| s.is_some()).count())
            .map(|e| &e.rule)
    }

    /// The methods the operations at `path` accept, for an `Allow` header; empty when no
    /// operation lives there.
    pub fn allowed_methods(&self, path: &str) -> Vec<Method> {
        let mut methods: Vec<Method> = Vec::new();
        for entry in self.at_path(path) {
            if !methods.contains(&entry.method) {
                methods.push(entry.method.clone());
            }
        }
        methods
    }

    fn at_path<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        let parts: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        self.entries.iter().filter(move |e| {
            e.segments.len() == parts.len()
                && e.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                    Some(literal) => literal == part,
                    None => !part.is_empty(),
                })
        })
    }

    pub fn rules(&self) -> impl Iterator<Item = &OperationRule> {
        self.entries.iter().map(|e| &e.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_spec_routes_match() {
        let table = RouteTable::from_contract(Contract::committed());
        let rule = table
            .find(&Method::POST, "/indexes/idx_archive/search")
            .unwrap();
        assert_eq!(rule.operation_id, "index_search");
        let rule = table.find(&Method::GET, "/indexes").unwrap();
        assert_eq!(rule.operation_id, "index_list");
        assert!(table.find(&Method::PUT, "/indexes").is_none());
        assert!(table.find(&Method::GET, "/indexes//").is_none());
        assert_eq!(
            table.allowed_methods("/indexes/idx_a"),
            [Method::DELETE, Method::GET, Method::PATCH]
        );
        assert!(table.allowed_methods("/nowhere").is_empty());
    }
}
