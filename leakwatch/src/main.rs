//! The `leakwatch` binary: parse the command line, validate it, dispatch to a command, map the
//! result to an exit code. Wiring lives in the `node` crate, domain logic in the role crates;
//! the commands here only format what those return.

mod cli;
mod commands;
mod webhook;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Everything leakwatch creates (the data dir, the index, the alert store, Tor's state,
    // lock and temp files) is owner-only: it is about stolen data.
    // SAFETY: umask only swaps the process's file-mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
