//! The store's behaviour, the same on SQLite and on PostgreSQL.

use super::*;

/// A fresh PostgreSQL database on the test machine's server (127.0.0.1:5432, trust auth),
/// dropped when the guard goes.
pub struct PgTestDb {
    pub url: String,
    name: String,
}

impl PgTestDb {
    pub async fn create() -> PgTestDb {
        let admin = "postgres://postgres@127.0.0.1:5432/postgres";
        let (c, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test.sh starts one)");
        tokio::spawn(conn);
        let name = format!(
            "leakwatch_console_t{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        PgTestDb {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn alert(kind: schema::AlertKind, label: &str, url: &str, page: &str, at: &str) -> schema::Alert {
    schema::Alert {
        id: schema::Alert::id_for(kind, label, url),
        kind,
        url: url.into(),
        page_url: Some(page.into()),
        label: label.into(),
        distance: 7,
        algorithm: "pdq".into(),
        detected_at: at.into(),
        page_fetched_at: None,
        listed_at: None,
        context: vec![],
        identifier: None,
    }
}

/// Everything the console asks of its state; `b` is a second handle on the same state
/// (another process, or the same one after a restart).
async fn exercise(a: StateStore, b: StateStore) {
    use schema::AlertKind::{Image, Text};
    let x = alert(
        Image,
        "cam1-0001",
        "http://f.onion/a.jpg",
        "http://f.onion/t/1",
        "2026-11-01T10:00:00Z",
    );
    let y = alert(
        Image,
        "cam1-0001",
        "http://m.onion/b.jpg",
        "http://m.onion/p",
        "2026-11-03T10:00:00Z",
    );
    let z = alert(
        Text,
        "plate-17",
        "http://paste.test/r/9",
        "http://paste.test/r/9",
        "2026-11-03T12:00:00Z",
    );
    assert_eq!(a.add_alerts(&[x.clone(), y.clone()]).await.unwrap(), 2);
    // Known ids are skipped, from any handle.
    assert_eq!(
        b.add_alerts(&[x.clone(), y.clone(), z.clone()])
            .await
            .unwrap(),
        1
    );

    let all = AlertFilter {
        limit: 50,
        ..Default::default()
    };
    let (total, rows) = a.alerts(&all).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(rows[0].id, z.id, "newest first");
    assert_eq!(rows[2].site, "f.onion");
    assert_eq!(rows[2].alert["label"], "cam1-0001");
    let page = AlertFilter {
        limit: 1,
        offset: 1,
        ..Default::default()
    };
    let (total, rows) = b.alerts(&page).await.unwrap();
    assert_eq!(
        (total, rows.len(), rows[0].id.as_str()),
        (3, 1, y.id.as_str())
    );
    let by_label = AlertFilter {
        label: Some("cam1-0001".into()),
        kind: Some("image".into()),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(a.alerts(&by_label).await.unwrap().0, 2);
    let by_page = AlertFilter {
        page_url: Some("http://paste.test/r/9".into()),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(a.alerts(&by_page).await.unwrap().1[0].id, z.id);

    // Reviews are seen by every handle and leave coverage.
    assert_eq!(
        a.review(
            &[x.id.clone(), "nope".into()],
            "false_positive",
            "ana",
            "same car, other plate"
        )
        .await
        .unwrap(),
        1
    );
    let r = b.alert(&x.id).await.unwrap().unwrap();
    assert_eq!(
        (
            r.state.as_str(),
            r.reviewed_by.as_deref(),
            r.note.as_deref()
        ),
        ("false_positive", Some("ana"), Some("same car, other plate"))
    );
    let fp = AlertFilter {
        state: Some("false_positive".into()),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(b.alerts(&fp).await.unwrap().0, 1);
    let surfaced = b.surfaced().await.unwrap();
    let cam = surfaced.iter().find(|s| s.label == "cam1-0001").unwrap();
    assert_eq!(
        (cam.sightings, cam.sites, cam.first_seen.as_str()),
        (1, 1, "2026-11-03T10:00:00Z")
    );
    assert_eq!(b.per_day().await.unwrap(), [("2026-11-03".to_string(), 2)]);
    let mut pages = a.alerted_pages().await.unwrap();
    pages.sort();
    assert_eq!(pages, ["http://m.onion/p", "http://paste.test/r/9"]);

    a.add_negative("ab".repeat(32).as_str(), &x.id, "ana")
        .await
        .unwrap();
    a.add_negative("ab".repeat(32).as_str(), &x.id, "ana")
        .await
        .unwrap();
    assert_eq!(b.negatives().await.unwrap(), ["ab".repeat(32)]);

    // Users, sessions, tokens.
    a.add_user("ana", UserRole::Analyst, "$argon2id$x")
        .await
        .unwrap();
    assert!(matches!(
        b.add_user("ana", UserRole::Admin, "h").await,
        Err(StoreError::UserExists(_))
    ));
    let u = b.user("ana").await.unwrap().unwrap();
    assert_eq!(
        (u.role, u.password_hash.as_str()),
        (UserRole::Analyst, "$argon2id$x")
    );
    assert!(b.user("bob").await.unwrap().is_none());
    let live = Session {
        token_hash: "t1".into(),
        user: "ana".into(),
        csrf: "c1".into(),
        expires_at: unix_now() + 60,
    };
    let old = Session {
        token_hash: "t0".into(),
        expires_at: unix_now() - 1,
        ..live.clone()
    };
    a.add_session(&old).await.unwrap();
    a.add_session(&live).await.unwrap();
    assert_eq!(b.session("t1").await.unwrap().unwrap().csrf, "c1");
    assert!(b.session("t0").await.unwrap().is_none(), "expired");
    b.end_session("t1").await.unwrap();
    assert!(a.session("t1").await.unwrap().is_none());
    a.add_token("h1", "ana", "siem").await.unwrap();
    assert_eq!(b.token_user("h1").await.unwrap().as_deref(), Some("ana"));
    assert!(b.token_user("h2").await.unwrap().is_none());

    tokens_and_removal(&a, &b, &live).await;

    a.audit("ana", "search", "q=foo").await.unwrap();
    b.audit("ana", "view", "alert x").await.unwrap();
    let log = a.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].action.as_str(), log[1].action.as_str()),
        ("view", "search")
    );
}

/// Tokens are listed without their secret and revoked; a user goes with its sessions and
/// tokens, but never the last admin, even when two admins are removed at once.
async fn tokens_and_removal(a: &StateStore, b: &StateStore, live: &Session) {
    a.add_user("boss", UserRole::Admin, "h").await.unwrap();
    a.add_user("root", UserRole::Admin, "h").await.unwrap();
    a.add_token("b1b1b1b1b1b1b1b1", "boss", "siem")
        .await
        .unwrap();
    let mut listed: Vec<(String, String, String)> = b
        .tokens(None)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.user, t.label))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("b1b1b1b1b1b1".into(), "boss".into(), "siem".into()),
            ("h1".into(), "ana".into(), "siem".into())
        ]
    );
    assert_eq!(b.tokens(Some("ana")).await.unwrap().len(), 1);
    assert!(a.revoke_token("b1b1b1b1b1b1b1b1").await.unwrap());
    assert!(!b.revoke_token("b1b1b1b1b1b1b1b1").await.unwrap());
    assert!(b.token_user("b1b1b1b1b1b1b1b1").await.unwrap().is_none());

    let s2 = Session {
        token_hash: "t2".into(),
        ..live.clone()
    };
    a.add_session(&s2).await.unwrap();
    assert_eq!(
        b.remove_user("ana").await.unwrap(),
        Some(Removed {
            sessions: 1,
            tokens: 1
        })
    );
    assert!(a.session("t2").await.unwrap().is_none());
    assert!(a.token_user("h1").await.unwrap().is_none());
    assert_eq!(a.remove_user("ana").await.unwrap(), None, "gone already");
    let (x, y) = tokio::join!(a.remove_user("boss"), b.remove_user("root"));
    let removed = [x.unwrap(), y.unwrap()];
    assert_eq!(
        removed.iter().filter(|r| r.is_some()).count(),
        1,
        "one admin stays: {removed:?}"
    );
    let admins = a.users().await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(a.remove_user(&admins[0].name).await.unwrap(), None);
    a.add_user("ana", UserRole::Analyst, "$argon2id$x")
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_store_keeps_the_consoles_state() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(None, dir.path()).await.unwrap();
    let b = open(None, dir.path()).await.unwrap();
    exercise(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_keeps_the_consoles_state() {
    let db = PgTestDb::create().await;
    // Two processes opening (and migrating) at once.
    let (a, b) = tokio::join!(
        open(Some(&db.url), Path::new("/nonexistent")),
        open(Some(&db.url), Path::new("/nonexistent"))
    );
    exercise(a.unwrap(), b.unwrap()).await;
}

#[tokio::test]
async fn bad_state_urls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(Some("mysql://x"), dir.path()).await.err().unwrap();
    assert!(e.to_string().contains("expected postgres://"), "{e}");
}
