//! Embedders: what turns a segment's text (or a query) into a vector for search by
//! meaning. The built-in one ships with the binary (a static token table, no ML runtime).

pub mod builtin;
mod stopwords;
pub mod wordpiece;
