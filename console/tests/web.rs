//! The console's security over real HTTP: nothing without a login, CSRF tokens and origins
//! checked on every form, analysts kept out of user management, login attempts limited,
//! sessions ended by logout, access revoked at once with a token or a removed user, and an
//! audit entry for every search, view and review — with a searched identifier masked in it.
//! Also what a console does with the data dir beside it: pages stay up when the alert log
//! cannot be read, and the negative list's file is restored from the state at start.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use leakwatch_console as console;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange (Connection: close): status, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The value of cookie `name` this reply sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().iter().find_map(|c| {
            let (kv, _) = c.split_once(';')?;
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
    /// The value of the first hidden `csrf` input.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

const PASSWORD: &str = "correct horse battery staple";

struct Console {
    addr: SocketAddr,
    store: console::StateStore,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(dir: &Path) -> Console {
    let store = console::store::open(None, dir).await.unwrap();
    console::add_user(&store, "boss", console::UserRole::Admin, PASSWORD.into())
        .await
        .unwrap();
    console::add_user(&store, "ana", console::UserRole::Analyst, PASSWORD.into())
        .await
        .unwrap();
    let a = alerts::image(
        "cam2-0042",
        "http://x.onion/a.jpg",
        Some("http://x.onion/t/1"),
        4,
        "pdq",
    );
    std::fs::write(
        dir.join(alerts::ALERTS_FILE),
        format!("{}\n", serde_json::to_string(&a).unwrap()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = options(dir);
    tokio::spawn(async move {
        console::serve(listener, options, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Console {
        addr,
        store,
        _stop: stop,
    }
}

fn options(dir: &Path) -> console::ConsoleOptions {
    console::ConsoleOptions {
        data_dir: dir.to_path_buf(),
        state_url: None,
        paste_hosts: vec![],
        inventory: Arc::new(console::NoInventory),
    }
}

/// Logs in; returns the session cookie header value.
async fn login(c: &Console, user: &str, password: &str) -> Reply {
    let page = http(c.addr, "GET", "/login", &[], "").await;
    let token = page.cookie("lw_login").expect("login cookie");
    let cookie = format!("lw_login={token}");
    let body = form(&[
        ("user", user),
        ("password", password),
        ("csrf", &page.csrf()),
    ]);
    http(c.addr, "POST", "/login", &[("Cookie", &cookie)], &body).await
}

async fn session(c: &Console, user: &str) -> String {
    let r = login(c, user, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    format!("lw_session={}", r.cookie("lw_session").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_without_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    for path in [
        "/",
        "/alerts",
        "/search?q=x",
        "/page?url=http://x.onion/",
        "/coverage",
        "/users",
        "/audit",
        "/alerts/abc",
    ] {
        let r = http(c.addr, "GET", path, &[], "").await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/login")),
            "GET {path}"
        );
        let r = http(c.addr, "GET", path, &[("Cookie", "lw_session=forged")], "").await;
        assert_eq!(r.status, 303, "GET {path} with a forged session");
    }
    for path in ["/alerts/review", "/alerts/abc/review", "/users", "/logout"] {
        let r = http(c.addr, "POST", path, &[], "csrf=x&state=dismissed&ids=abc").await;
        assert_eq!(r.status, 303, "POST {path}");
    }
    for path in [
        "/api/alerts",
        "/api/search?q=x",
        "/api/coverage",
        "/api/alerts/abc",
    ] {
        let r = http(c.addr, "GET", path, &[("Authorization", "Bearer nope")], "").await;
        assert_eq!(r.status, 401, "GET {path}");
    }
    let r = http(c.addr, "GET", "/healthz", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    // Every answer forbids scripts and remote content.
    let csp = r.header("content-security-policy").unwrap();
    for rule in [
        "script-src 'none'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(rule), "{csp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_strict_cookies_and_end_at_logout() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let r = login(&c, "ana", PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/alerts")));
    let set = r
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("lw_session="))
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    let cookie = format!("lw_session={}", r.cookie("lw_session").unwrap());
    let alerts = http(c.addr, "GET", "/alerts", &[("Cookie", &cookie)], "").await;
    assert_eq!(alerts.status, 200);
    assert!(alerts.body.contains("cam2-0042"), "the alert log was read");
    let out = form(&[("csrf", &alerts.csrf())]);
    let r = http(c.addr, "POST", "/logout", &[("Cookie", &cookie)], &out).await;
    assert_eq!(r.status, 303);
    let r = http(c.addr, "GET", "/alerts", &[("Cookie", &cookie)], "").await;
    assert_eq!(r.status, 303, "the old session cookie no longer works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let cookie = session(&c, "boss").await;
    let page = http(c.addr, "GET", "/alerts", &[("Cookie", &cookie)], "").await;
    let csrf = page.csrf();
    let id = schema::Alert::id_for(
        schema::AlertKind::Image,
        "cam2-0042",
        "http://x.onion/a.jpg",
    );
    let path = format!("/alerts/{id}/review");
    let review = |token: &str| form(&[("csrf", token), ("state", "dismissed"), ("note", "n")]);
    for (body, extra) in [
        (review(""), None),
        (review("0000"), None),
        (form(&[("state", "dismissed")]), None),
        (review(&csrf), Some(("Origin", "http://evil.example"))),
    ] {
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend(extra);
        let r = http(c.addr, "POST", &path, &headers, &body).await;
        assert_eq!(r.status, 403, "{body} {extra:?}");
    }
    assert_eq!(
        c.store.alert(&id).await.unwrap().unwrap().state,
        "new",
        "nothing was reviewed"
    );
    // The same form with the token, from this origin, goes through.
    let origin = format!("http://{}", c.addr);
    let r = http(
        c.addr,
        "POST",
        &path,
        &[("Cookie", &cookie), ("Origin", &origin)],
        &review(&csrf),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        c.store.alert(&id).await.unwrap().unwrap().state,
        "dismissed"
    );
    // A user-adding form posted with another session's token fails too.
    let other = session(&c, "boss").await;
    let add = form(&[
        ("csrf", &csrf),
        ("name", "mallory"),
        ("role", "admin"),
        ("password", PASSWORD),
    ]);
    let r = http(c.addr, "POST", "/users", &[("Cookie", &other)], &add).await;
    assert_eq!(r.status, 403);
    assert!(c.store.user("mallory").await.unwrap().is_none());
    // The login form needs its own token cookie.
    let page = http(c.addr, "GET", "/login", &[], "").await;
    let body = form(&[
        ("user", "boss"),
        ("password", PASSWORD),
        ("csrf", &page.csrf()),
    ]);
    let r = http(c.addr, "POST", "/login", &[], &body).await;
    assert_eq!(r.status, 403);
    assert!(r.cookie("lw_session").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_cannot_manage_users_and_admins_can() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let ana = session(&c, "ana").await;
    let page = http(c.addr, "GET", "/users", &[("Cookie", &ana)], "").await;
    assert_eq!(page.status, 403);
    assert!(!page.body.contains("boss"), "no user list for analysts");
    let alerts = http(c.addr, "GET", "/alerts", &[("Cookie", &ana)], "").await;
    assert!(
        !alerts.body.contains("href=\"/users\""),
        "no users link for analysts"
    );
    let add = form(&[
        ("csrf", &alerts.csrf()),
        ("name", "eve"),
        ("role", "admin"),
        ("password", PASSWORD),
    ]);
    let r = http(c.addr, "POST", "/users", &[("Cookie", &ana)], &add).await;
    assert_eq!(r.status, 403);
    assert!(c.store.user("eve").await.unwrap().is_none());
    assert_eq!(
        http(c.addr, "GET", "/audit", &[("Cookie", &ana)], "")
            .await
            .status,
        403
    );

    let boss = session(&c, "boss").await;
    let page = http(c.addr, "GET", "/users", &[("Cookie", &boss)], "").await;
    assert_eq!(page.status, 200);
    let add = form(&[
        ("csrf", &page.csrf()),
        ("name", "eve"),
        ("role", "analyst"),
        ("password", PASSWORD),
    ]);
    let r = http(c.addr, "POST", "/users", &[("Cookie", &boss)], &add).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        c.store.user("eve").await.unwrap().unwrap().role,
        console::UserRole::Analyst
    );
    let short = form(&[
        ("csrf", &page.csrf()),
        ("name", "fay"),
        ("role", "analyst"),
        ("password", "short"),
    ]);
    let r = http(c.addr, "POST", "/users", &[("Cookie", &boss)], &short).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("at least 12"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    for _ in 0..5 {
        let r = login(&c, "ana", "wrong password guess").await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("Unknown user or wrong password"));
    }
    // Even the right password waits now.
    let r = login(&c, "ana", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.cookie("lw_session").is_none());
    // Another user is not held up by ana's attempts (this address is under its own limit).
    assert_eq!(login(&c, "boss", PASSWORD).await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_views_and_reviews_are_audited_without_identifiers_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let cookie = session(&c, "ana").await;
    let r = http(
        c.addr,
        "GET",
        "/search?q=plate+KX74821",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let id = schema::Alert::id_for(
        schema::AlertKind::Image,
        "cam2-0042",
        "http://x.onion/a.jpg",
    );
    let page = http(
        c.addr,
        "GET",
        &format!("/alerts/{id}"),
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    let body = form(&[
        ("csrf", &page.csrf()),
        ("state", "confirmed"),
        ("note", "same car"),
    ]);
    let r = http(
        c.addr,
        "POST",
        &format!("/alerts/{id}/review"),
        &[("Cookie", &cookie)],
        &body,
    )
    .await;
    assert_eq!(r.status, 303);
    let _ = http(c.addr, "GET", "/coverage", &[("Cookie", &cookie)], "").await;
    let log = c.store.audit_log(100).await.unwrap();
    let has = |action: &str, target: &str| {
        log.iter()
            .any(|e| e.user == "ana" && e.action == action && e.target.contains(target))
    };
    assert!(has("login", "from 127.0.0.1"), "{log:?}");
    assert!(has("search", "KX***21"), "{log:?}");
    assert!(has("view-alert", &id), "{log:?}");
    assert!(has("review", &format!("{id} confirmed")), "{log:?}");
    assert!(has("view-coverage", ""), "{log:?}");
    assert!(
        !log.iter().any(|e| e.target.contains("KX74821")),
        "identifier in clear: {log:?}"
    );
    let a = c.store.alert(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            a.state.as_str(),
            a.reviewed_by.as_deref(),
            a.note.as_deref()
        ),
        ("confirmed", Some("ana"), Some("same car"))
    );
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_and_a_removed_user_lose_access_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let api = |token: String| async move {
        http(
            c.addr,
            "GET",
            "/api/alerts",
            &[("Authorization", &bearer(&token))],
            "",
        )
        .await
        .status
    };
    let siem = console::create_token(&c.store, "ana", "siem")
        .await
        .unwrap();
    let other = console::create_token(&c.store, "ana", "api").await.unwrap();
    console::create_token(&c.store, "boss", "api")
        .await
        .unwrap();
    let cookie = session(&c, "ana").await;
    assert_eq!(api(siem.clone()).await, 200);

    // A label two users' tokens carry names no token until the user is given.
    let e = console::revoke_token(&c.store, "api", None, "cli")
        .await
        .unwrap_err();
    assert!(
        matches!(e, console::UserError::AmbiguousToken { .. }),
        "{e}"
    );
    let listed = c.store.tokens(Some("ana")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|t| !siem.contains(&t.id) && t.id.len() == 12));
    let by_id = listed
        .iter()
        .find(|t| t.label == "siem")
        .unwrap()
        .id
        .clone();
    let t = console::revoke_token(&c.store, &by_id, None, "cli")
        .await
        .unwrap();
    assert_eq!((t.user.as_str(), t.label.as_str()), ("ana", "siem"));
    assert_eq!(api(siem).await, 401, "a revoked token is refused at once");
    assert_eq!(api(other.clone()).await, 200);

    let removed = console::remove_user(&c.store, "ana", "cli").await.unwrap();
    assert_eq!((removed.sessions, removed.tokens), (1, 1));
    let page = http(c.addr, "GET", "/alerts", &[("Cookie", &cookie)], "").await;
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some("/login"))
    );
    assert_eq!(api(other.clone()).await, 401);
    // A new user of the same name inherits nothing.
    console::add_user(&c.store, "ana", console::UserRole::Analyst, PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(api(other).await, 401);
    let page = http(c.addr, "GET", "/alerts", &[("Cookie", &cookie)], "").await;
    assert_eq!(page.status, 303);

    let e = console::remove_user(&c.store, "boss", "cli")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last admin"), "{e}");
    assert!(c.store.user("boss").await.unwrap().is_some());
    let log = c.store.audit_log(100).await.unwrap();
    let by_cli = |action: &str| log.iter().any(|e| e.user == "cli" && e.action == action);
    assert!(by_cli("token-revoked") && by_cli("user-removed"), "{log:?}");
}

/// Turns the state's writes of new alerts on or off (a full disk, a broken database).
fn alerts_refused(dir: &Path, refused: bool) {
    let db = rusqlite::Connection::open(dir.join(console::store::SQLITE_FILE)).unwrap();
    let sql = if refused {
        "CREATE TRIGGER refuse BEFORE INSERT ON console_alerts \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    } else {
        "DROP TRIGGER refuse"
    };
    db.execute_batch(sql).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_up_and_say_the_feed_is_behind_when_alerts_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let cookie = session(&c, "ana").await;
    let token = console::create_token(&c.store, "ana", "t").await.unwrap();
    let get = |path: &'static str| {
        let cookie = cookie.clone();
        async move { http(c.addr, "GET", path, &[("Cookie", &cookie)], "").await }
    };
    let r = get("/alerts").await;
    assert!(r.body.contains("cam2-0042") && !r.body.contains("feed-behind"));
    let id = schema::Alert::id_for(
        schema::AlertKind::Image,
        "cam2-0042",
        "http://x.onion/a.jpg",
    );

    alerts_refused(dir.path(), true);
    let b = alerts::image("cam9-0001", "http://y.onion/b.jpg", None, 2, "pdq");
    let log = dir.path().join(alerts::ALERTS_FILE);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    use std::io::Write;
    writeln!(f, "{}", serde_json::to_string(&b).unwrap()).unwrap();
    drop(f);
    let alert_page = format!("/alerts/{id}");
    for path in ["/alerts", alert_page.as_str(), "/coverage"] {
        let r = http(c.addr, "GET", path, &[("Cookie", &cookie)], "").await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body.contains("id=\"feed-behind\""), "{path}: {}", r.body);
        assert!(r.body.contains("cam2-0042"), "{path}");
    }
    let auth = bearer(&token);
    for path in ["/api/alerts", "/api/coverage"] {
        let r = http(c.addr, "GET", path, &[("Authorization", &auth)], "").await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }

    // The feed catches up once the state takes alerts again.
    alerts_refused(dir.path(), false);
    let r = get("/alerts").await;
    assert!(r.body.contains("cam9-0001") && !r.body.contains("feed-behind"));

    // An alert log that cannot be read is said, not taken for "nothing new".
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    let r = get("/alerts").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("feed-behind") && r.body.contains("cam9-0001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_negative_list_file_is_rebuilt_from_the_state_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = console::store::open(None, dir.path()).await.unwrap();
    let (a, b) = ("ab".repeat(32), "cd".repeat(32));
    store.add_negative(&b, "alert-b", "ana").await.unwrap();
    store.add_negative(&a, "alert-a", "ana").await.unwrap();
    let file = dir.path().join(alerts::negatives::NEGATIVES_FILE);
    let want = format!("{a}\n{b}\n");
    // Lost, then edited by hand: each time the console starts, the file is the state's list.
    for damage in [None, Some(format!("{a}\n# by hand\n{}\n", "ee".repeat(32)))] {
        match damage {
            None => assert!(!file.exists()),
            Some(text) => std::fs::write(&file, text).unwrap(),
        }
        let _console = console::Console::open(options(dir.path())).await.unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), want);
    }
}
