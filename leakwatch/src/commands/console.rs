//! `leakwatch console`, `users` and `tokens`: the analysts' console and who may use it.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use node::Config;

use crate::cli::{ConsoleArgs, TokensCmd, UserRoleArg, UsersCmd};

/// Serves the console until SIGTERM or Ctrl-C.
pub async fn serve(
    data_dir: &Path,
    config: &Config,
    args: ConsoleArgs,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("console on http://{}/", listener.local_addr()?);
    let options = node::console::options(data_dir, args.state.state_url, config);
    console::serve(listener, options, node::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn open(data_dir: &Path, state_url: Option<&str>) -> anyhow::Result<console::StateStore> {
    if state_url.is_none() {
        datadir::create_private_dir_all(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    }
    Ok(console::store::open(state_url, data_dir).await?)
}

pub async fn users(data_dir: &Path, cmd: UsersCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCmd::Add {
            name, role, state, ..
        } => {
            let store = open(data_dir, state.state_url.as_deref()).await?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            let role = match role {
                UserRoleArg::Analyst => console::UserRole::Analyst,
                UserRoleArg::Admin => console::UserRole::Admin,
            };
            console::add_user(&store, &name, role, password).await?;
            println!("added {name} ({})", role.as_str());
        }
        UsersCmd::List { json, state } => {
            let store = open(data_dir, state.state_url.as_deref()).await?;
            for u in store.users().await? {
                if json {
                    println!("{}", serde_json::to_string(&u)?);
                } else {
                    println!("{}\t{}\t{}", u.name, u.role.as_str(), u.created_at);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tokens(data_dir: &Path, cmd: TokensCmd) -> anyhow::Result<ExitCode> {
    let TokensCmd::Create { user, label, state } = cmd;
    let store = open(data_dir, state.state_url.as_deref()).await?;
    let token = console::create_token(&store, &user, &label).await?;
    eprintln!("API token for {user} (shown once; send it as `Authorization: Bearer TOKEN`):");
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
