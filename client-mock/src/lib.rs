//! Typed mocks of the VideoVector API for tests of code that uses `videovector-client`,
//! without a server: [`MockServerExt`] adds a method per operation to
//! [`httpmock::MockServer`], whose `when` and `then` take the client's own types, so a mock
//! that answers what the spec does not allow does not compile.
//!
//! ```no_run
//! use httpmock::MockServer;
//! use videovector_client_mock::MockServerExt;
//!
//! # async fn test() {
//! let server = MockServer::start();
//! let view = server.index_view(|when, then| {
//!     when.index_id("idx_archive");
//!     then.not_found(&not_found_problem());
//! });
//! # fn not_found_problem() -> videovector_client::types::Problem { todo!() }
//! # }
//! ```
//!
//! [`generated`] is produced by progenitor's httpmock generator from the committed spec
//! (`cargo run -p videovector-codegen -- generate`; `check` holds it to the spec).

#[rustfmt::skip]
#[allow(clippy::all, unused_imports, dead_code, missing_docs)]
mod generated;

pub use generated::*;
pub use httpmock;
