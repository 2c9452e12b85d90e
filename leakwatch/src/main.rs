//! The `leakwatch` binary: parse the command line, load the config, run the command, map the
//! result to an exit code. Everything else lives in the library crates and in [`commands`].

mod cli;
mod commands;
mod config;
mod pipeline;
mod webhook;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
