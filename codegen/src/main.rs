//! `cargo run -p videovector-codegen -- generate|check`.

fn main() -> std::process::ExitCode {
    videovector_codegen::main_with_args(&std::env::args().nth(1).unwrap_or_default())
}
