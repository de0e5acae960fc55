//! `cargo run -p videovector-codegen -- generate | check | site <dir>`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    videovector_codegen::main_with_args(&args)
}
