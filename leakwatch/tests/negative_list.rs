//! A false positive stays quiet: an analyst marks an image alert a false positive with the
//! negative list (over the console's JSON API, with a token from `leakwatch tokens create`);
//! the next crawl finds the same image posted at another URL and raises nothing for it,
//! while a stolen photo posted beside it still alerts — also after the list's file was lost,
//! since a console writes it again from its state when it starts. Real binary, real console,
//! real crawl of a site on loopback.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

fn leakwatch(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data).args(args);
    cmd.env_remove("LEAKWATCH_CONFIG")
        .env_remove("LEAKWATCH_STATE_URL");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run leakwatch");
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "leakwatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A forum on loopback: day 1 posts stolen photo A; day 2 posts the same bytes under
/// another name, and stolen photo B.
async fn serve_site(a: Vec<u8>, b: Vec<u8>) -> std::net::SocketAddr {
    let img = |bytes: Vec<u8>| {
        move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "image/jpeg")], bytes).into_response() }
        }
    };
    let app = axum::Router::new()
        .route(
            "/day1",
            get(|| async { Html("<title>d1</title><img src=\"/a.jpg\">") }),
        )
        .route(
            "/day2",
            get(|| async {
                Html("<title>d2</title><img src=\"/repost.jpg\"><img src=\"/b.jpg\">")
            }),
        )
        .route("/a.jpg", get(img(a.clone())))
        .route("/repost.jpg", get(img(a)))
        .route("/b.jpg", get(img(b)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn crawl(data: &Path, seed: &str) -> Value {
    let out = leakwatch(
        data,
        &[
            "run",
            "--once",
            "--transport",
            "direct",
            "--allow-private",
            "--json",
            "--seed",
            seed,
        ],
        None,
    );
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

fn image_alerts(data: &Path) -> Vec<Value> {
    let out = leakwatch(data, &["alerts", "--json"], None);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["kind"] == "image")
        .collect()
}

/// POSTs JSON with a bearer token; returns status and body.
async fn post_json(addr: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

/// Starts `leakwatch console` on a free port; returns the child and its address.
fn start_console(data: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["console", "--listen", "127.0.0.1:0"])
        .env_remove("LEAKWATCH_STATE_URL")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("console output").unwrap();
        if let Some(rest) = line.strip_prefix("console on http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// Starts a console and waits until the negative list's file reads `want`.
async fn restored_by_a_console(data: &Path, want: &str) {
    let (mut console, _) = start_console(data);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let file = data.join("negatives.txt");
    while std::fs::read_to_string(&file).ok().as_deref() != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "the negative list was not restored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = console.kill();
    let _ = console.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_positive_on_the_negative_list_never_alerts_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stolen = dir.path().join("stolen");
    std::fs::create_dir_all(&stolen).unwrap();
    let (a, b) = (testbed::breach_photo(11, 0), testbed::breach_photo(11, 1));
    std::fs::write(stolen.join("photo-a.jpg"), jpeg(&a)).unwrap();
    std::fs::write(stolen.join("photo-b.jpg"), jpeg(&b)).unwrap();
    leakwatch(
        &data,
        &["fingerprints", "import", stolen.to_str().unwrap()],
        None,
    );
    let site = serve_site(jpeg(&a), jpeg(&b)).await;

    crawl(&data, &format!("http://{site}/day1"));
    let first = image_alerts(&data);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["label"], "photo-a");
    let id = first[0]["id"].as_str().unwrap().to_string();

    let password = "correct horse battery staple\n";
    leakwatch(
        &data,
        &["users", "add", "ana", "--password-stdin"],
        Some(password),
    );
    let token = leakwatch(&data, &["tokens", "create", "ana", "--label", "test"], None);
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let (mut console, addr) = start_console(&data);
    let review = r#"{"state":"false_positive","note":"our own press photo","negative":true}"#;
    let (status, body) =
        post_json(&addr, &format!("/api/alerts/{id}/review"), &token, review).await;
    let _ = console.kill();
    let _ = console.wait();
    assert_eq!(status, 200, "{body}");
    let reviewed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (reviewed["state"].as_str(), reviewed["reviewed_by"].as_str()),
        (Some("false_positive"), Some("ana"))
    );
    let listed = std::fs::read_to_string(data.join("negatives.txt")).unwrap();
    assert_eq!(listed.trim(), schema::sha256_hex(&jpeg(&a)));
    // The file lost: the next console to start writes it again from its state.
    std::fs::remove_file(data.join("negatives.txt")).unwrap();
    restored_by_a_console(&data, &listed).await;

    // Day 2: the same image at another URL, and another stolen photo.
    let summary = crawl(&data, &format!("http://{site}/day2"));
    let labels: Vec<String> = image_alerts(&data)
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["label"].as_str().unwrap(),
                a["url"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(labels.len(), 2, "only photo B is new: {labels:?}");
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("photo-b ") && l.ends_with("/b.jpg")),
        "{labels:?}"
    );
    assert!(
        !labels.iter().any(|l| l.ends_with("/repost.jpg")),
        "{labels:?}"
    );
    assert_eq!(
        summary["images_skipped"]["image.negative-listed"], 1,
        "{summary}"
    );
}
