//! The data dir through the real binary: everything in it is owner-only, and a second writer
//! of a store (an import, a retro-hunt that writes the alert store) is refused while another
//! process holds it, with a message naming the store and the holder.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// Runs the binary on `data` from a process whose umask lets group and others read, as a
/// default shell's does: what the data dir gets is then leakwatch's doing.
fn leakwatch(data: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("LEAKWATCH_CONFIG")
        .env_remove("LEAKWATCH_AMQP_URL");
    // SAFETY: umask only swaps the file-mode mask of the child before it execs.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::umask(0o022);
            Ok(())
        });
    }
    cmd.output().expect("run leakwatch")
}

fn ok(data: &Path, args: &[&str]) -> Output {
    let out = leakwatch(data, args);
    assert!(
        out.status.success(),
        "leakwatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_under_the_data_dir_is_owner_only() {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nested/data");
    let stolen = tmp.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    let idents = tmp.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "[crawler]\nworkers = 8\npoliteness_delay_ms = 0\n").unwrap();
    let data2 = data.clone();
    let seeds = tb.seeds();
    tokio::task::spawn_blocking(move || {
        let data = data2.as_path();
        let cfg = config.to_str().unwrap();
        ok(data, &["fingerprints", "import", stolen.to_str().unwrap()]);
        ok(data, &["watchlist", "import", idents.to_str().unwrap()]);
        let mut run = vec!["--config", cfg, "run", "--once", "--transport", "direct"];
        run.extend(["--allow-private", "--json"]);
        for s in &seeds {
            run.extend(["--seed", s.as_str()]);
        }
        ok(data, &run);
        ok(data, &["retrohunt"]);
    })
    .await
    .unwrap();

    let mut checked = 0;
    let mut loose = Vec::new();
    for p in [tmp.path().join("nested"), data.clone()] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        if mode != 0o700 {
            loose.push(format!("{} {mode:o}", p.display()));
        }
    }
    for entry in walkdir::WalkDir::new(&data).min_depth(1) {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        let want = if entry.file_type().is_dir() {
            0o700
        } else {
            0o600
        };
        if mode & !want != 0 || mode & 0o077 != 0 {
            loose.push(format!("{} {mode:o}", entry.path().display()));
        }
        checked += 1;
    }
    assert!(loose.is_empty(), "not owner-only: {loose:#?}");
    // The alert store, the bank, the watchlist and its key, the index and the locks.
    for name in [
        "alerts.jsonl",
        "fingerprints.bank",
        "watchlist.json",
        "watchlist.key",
        "index",
        "alerts.jsonl.lock",
    ] {
        assert!(data.join(name).exists(), "{name} missing");
    }
    assert!(checked > 10, "only {checked} paths under the data dir");
    tb.shutdown().await;
}

#[test]
fn a_second_writer_is_refused_naming_the_store_and_its_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let hashes = tmp.path().join("partner.txt");
    std::fs::write(&hashes, format!("{} shared-1\n", "ab".repeat(32))).unwrap();
    ok(
        &data,
        &[
            "fingerprints",
            "import",
            "--from-hashes",
            hashes.to_str().unwrap(),
        ],
    );

    // This test process stands for a running writer of each store in turn.
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "fingerprints.bank",
            "fingerprint bank",
            &["fingerprints", "import", "--from-hashes"],
        ),
        ("watchlist.json", "watchlist", &["watchlist", "import"]),
        ("alerts.jsonl", "alert store", &["retrohunt"]),
    ];
    let idents = tmp.path().join("identifiers.txt");
    std::fs::write(&idents, "KX7-4821\n").unwrap();
    for (file, what, cmd) in cases {
        let store = data.join(file);
        let held = datadir::WriterLock::acquire(&store, what).unwrap();
        let mut args: Vec<&str> = cmd.to_vec();
        match cmd[0] {
            "fingerprints" => args.push(hashes.to_str().unwrap()),
            "watchlist" => args.push(idents.to_str().unwrap()),
            _ => {}
        }
        let out = leakwatch(&data, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran beside a writer: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
        assert!(err.contains(store.to_str().unwrap()), "{args:?}: {err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{args:?} does not name the holder: {err}"
        );
        drop(held);
        ok(&data, &args);
    }
}

/// The watchlist key kept outside the data dir, as the README tells operators: the import
/// makes it there, the data dir gets none, the same key finds the watchlist again, and
/// without it (or with another) the watchlist is refused instead of matching nothing.
#[test]
fn the_watchlist_key_lives_where_the_environment_says() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let secret = tmp.path().join("secrets");
    std::fs::create_dir_all(&secret).unwrap();
    let key_file = secret.join("watchlist.key");
    let ids = tmp.path().join("ids.txt");
    std::fs::write(&ids, "KX7-4821\nemail:jd@x.example\n").unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(&data).args(args);
        cmd.env_remove("LEAKWATCH_WATCHLIST_KEY")
            .env_remove("LEAKWATCH_WATCHLIST_KEY_FILE")
            .env_remove("LEAKWATCH_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run leakwatch")
    };
    let outside = [("LEAKWATCH_WATCHLIST_KEY_FILE", key_file.to_str().unwrap())];
    let out = run(&["watchlist", "import", ids.to_str().unwrap()], &outside);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);
    assert!(
        !data.join("watchlist.key").exists(),
        "a key was made in the data dir"
    );
    let out = run(&["watchlist", "count"], &outside);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");

    let hex_key = "ab".repeat(32);
    for env in [vec![], vec![("LEAKWATCH_WATCHLIST_KEY", hex_key.as_str())]] {
        let out = run(&["watchlist", "count"], &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("another key"),
            "{env:?}: {err}"
        );
    }
    assert!(
        !data.join("watchlist.key").exists(),
        "a failed open made a key"
    );
    let out = run(
        &["watchlist", "count"],
        &[("LEAKWATCH_WATCHLIST_KEY", "not hex")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
}
