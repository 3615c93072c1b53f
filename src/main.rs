//! The `shiftlive` command: parse, dispatch, print the error as one line, exit with its code
//! (`cli::exit` lists them).

mod cli;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    cli::exit::install_panic_hook();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SHIFTLIVE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = cli::Cli::parse();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli.run())) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(err)) => cli::exit::report(&err),
        // The hook has printed the one line.
        Err(_) => std::process::ExitCode::from(cli::exit::BUG),
    }
}
