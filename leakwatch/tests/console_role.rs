//! The console as a role of a running node (`run --roles all,console`): it listens where
//! `[console] listen` says, shows the alerts the pipeline beside it raises, shares the data
//! dir's SQLite state with the frontier, and stops with the node on SIGTERM. And who may use
//! a running console, from the command line: tokens listed (never their secret) and revoked,
//! users removed, at once.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

fn get_with(addr: &str, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_role_serves_the_alerts_of_its_node_and_stops_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stolen = dir.path().join("stolen");
    std::fs::create_dir_all(&stolen).unwrap();
    let photo = testbed::breach_photo(5, 2);
    let mut jpeg = std::io::Cursor::new(Vec::new());
    photo.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let jpeg = jpeg.into_inner();
    std::fs::write(stolen.join("crossing-7.jpg"), &jpeg).unwrap();
    let ok = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    ok(&["fingerprints", "import", stolen.to_str().unwrap()]);
    std::fs::write(
        dir.path().join("cfg.toml"),
        "[console]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();

    let app = axum::Router::new()
        .route(
            "/",
            get(|| async { Html("<title>t</title><img src=\"/p.jpg\">") }),
        )
        .route(
            "/p.jpg",
            get(move || {
                let b = jpeg.clone();
                async move { ([("content-type", "image/jpeg")], b).into_response() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut node = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(dir.path().join("cfg.toml"))
        .args([
            "run",
            "--roles",
            "all,console",
            "--transport",
            "direct",
            "--allow-private",
        ])
        .args(["--seed", &format!("http://{site}/")])
        .env_remove("LEAKWATCH_CONFIG")
        .env_remove("LEAKWATCH_STATE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(node.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the node's stderr").unwrap();
        if let Some(rest) = line.strip_prefix("console on http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));

    // The console's users and tokens live in the same SQLite file as the running frontier.
    let mut add = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["users", "add", "ana", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(add.stdin.take().unwrap(), "correct horse battery staple").unwrap();
    assert!(add.wait().unwrap().success());
    let token = ok(&["tokens", "create", "ana"]);
    assert_eq!(get_with(&addr, "/healthz", "").0, 200);
    assert_eq!(get_with(&addr, "/api/alerts", "wrong").0, 401);
    let deadline = Instant::now() + Duration::from_secs(60);
    let alerts = loop {
        let (status, body) = get_with(&addr, "/api/alerts", &token);
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["total"] == 1 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no alert reached the console: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(alerts["alerts"][0]["label"], "crossing-7");
    assert_eq!(alerts["alerts"][0]["state"], "new");

    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || node.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the console stopped with the node"
    );
}

/// Runs leakwatch on `data` with `stdin`; returns success, stdout and stderr.
fn leakwatch(data: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("LEAKWATCH_CONFIG")
        .env_remove("LEAKWATCH_STATE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_and_revoked_and_users_removed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ok = |args: &[&str]| {
        let (ok, out, err) = leakwatch(&data, args, "correct horse battery staple\n");
        assert!(ok, "leakwatch {args:?}: {err}");
        out
    };
    ok(&[
        "users",
        "add",
        "boss",
        "--role",
        "admin",
        "--password-stdin",
    ]);
    ok(&["users", "add", "ana", "--password-stdin"]);
    let siem = ok(&["tokens", "create", "ana", "--label", "siem"]);
    let other = ok(&["tokens", "create", "ana"]);
    let listed = ok(&["tokens", "list", "ana"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        !listed.contains(&siem) && !listed.contains(&other),
        "{listed}"
    );
    let json = ok(&["tokens", "list", "--json"]);
    let siem_id = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|t| t["label"] == "siem" && t["user"] == "ana")
        .expect("the siem token listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        listed.contains(&format!("{siem_id}\tana\tsiem\t")),
        "{listed}"
    );

    let mut console = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["console", "--listen", "127.0.0.1:0"])
        .env_remove("LEAKWATCH_STATE_URL")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(console.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the console's stderr").unwrap();
        if let Some(rest) = line.strip_prefix("console on http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let status = |token: &str| get_with(&addr, "/api/alerts", token).0;
    assert_eq!((status(&siem), status(&other)), (200, 200));

    ok(&["tokens", "revoke", &siem_id]);
    assert_eq!((status(&siem), status(&other)), (401, 200));
    let (revoked, _, err) = leakwatch(&data, &["tokens", "revoke", &siem_id], "");
    assert!(!revoked && err.contains("no token"), "{err}");

    let removed = ok(&["users", "remove", "ana"]);
    assert!(removed.contains("1 tokens revoked"), "{removed}");
    assert_eq!(status(&other), 401);
    assert_eq!(ok(&["tokens", "list"]), "");
    let (gone, _, err) = leakwatch(&data, &["users", "remove", "boss"], "");
    assert!(!gone && err.contains("last admin"), "{err}");
    assert!(ok(&["users", "list"]).starts_with("boss\tadmin"));
    let _ = console.kill();
    let _ = console.wait();
}
