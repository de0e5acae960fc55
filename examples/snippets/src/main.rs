//! `videovector-snippets <operation_id>`: runs that operation's Rust example from the API
//! reference (generated into `generated.rs` from the contract's example values, each the
//! snippet the reference shows) against the server at `VIDEOVECTOR_URL`, with
//! `VIDEOVECTOR_API_KEY` or `VIDEOVECTOR_TOKEN`. Exits 1 with the error when the call
//! fails, 2 when there is no such example. `.ci/snippets` runs every one.

#[rustfmt::skip]
mod generated;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    match generated::run(&name).await {
        Some(Ok(())) => std::process::ExitCode::SUCCESS,
        Some(Err(error)) => {
            eprintln!("{name}: {error}");
            std::process::ExitCode::FAILURE
        }
        None => {
            eprintln!("no example named `{name}`");
            std::process::ExitCode::from(2)
        }
    }
}
