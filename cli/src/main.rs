//! The `vvctl` binary: [`videovector_cli::run`] over the process's arguments, environment,
//! input and output.

use std::process::ExitCode;

use videovector_cli::credentials::ProcessEnvironment;

#[tokio::main]
async fn main() -> ExitCode {
    let stdin = std::io::stdin();
    let result = videovector_cli::run(
        std::env::args().collect(),
        &ProcessEnvironment,
        &mut stdin.lock(),
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    )
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<clap::Error>() {
            Some(usage) => {
                let _ = usage.print();
                ExitCode::from(2)
            }
            None if error.is::<videovector_cli::Refused>() => ExitCode::FAILURE,
            None => {
                eprintln!("vvctl: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}
