//! `leakwatch console`, `users` and `tokens`: the analysts' console and who may use it
//! (adding, listing and removing users; creating, listing and revoking API tokens).

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use node::Config;

use crate::cli::{ConsoleArgs, TokensCmd, UserRoleArg, UsersCmd};

/// Who the audit log names for what is done on the command line.
const CLI: &str = "cli";

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
            add_user(&store, &name, role).await?;
        }
        UsersCmd::Remove { name, state } => {
            let store = open(data_dir, state.state_url.as_deref()).await?;
            let r = console::remove_user(&store, &name, CLI).await?;
            println!(
                "removed {name}: {} sessions ended, {} tokens revoked",
                r.sessions, r.tokens
            );
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

/// Adds a user with the password on the first line of stdin.
async fn add_user(
    store: &console::StateStore,
    name: &str,
    role: UserRoleArg,
) -> anyhow::Result<()> {
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
    console::add_user(store, name, role, password).await?;
    println!("added {name} ({})", role.as_str());
    Ok(())
}

pub async fn tokens(data_dir: &Path, cmd: TokensCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCmd::Create { user, label, state } => {
            let store = open(data_dir, state.state_url.as_deref()).await?;
            let token = console::create_token(&store, &user, &label).await?;
            eprintln!(
                "API token for {user} (shown once; send it as `Authorization: Bearer TOKEN`):"
            );
            println!("{token}");
        }
        TokensCmd::List { user, json, state } => {
            let store = open(data_dir, state.state_url.as_deref()).await?;
            for t in store.tokens(user.as_deref()).await? {
                if json {
                    println!("{}", serde_json::to_string(&t)?);
                } else {
                    println!("{}\t{}\t{}\t{}", t.id, t.user, t.label, t.created_at);
                }
            }
        }
        TokensCmd::Revoke {
            id_or_label,
            user,
            state,
        } => {
            let store = open(data_dir, state.state_url.as_deref()).await?;
            let t = console::revoke_token(&store, &id_or_label, user.as_deref(), CLI).await?;
            println!("revoked token {} of {} ({})", t.id, t.user, t.label);
        }
    }
    Ok(ExitCode::SUCCESS)
}
