//! The demo's live feed over real HTTP: every stream gets each new post, user text
//! is escaped, bad input gets 422 (or 413) and stores nothing, posts survive a
//! restart of the process, and the streams end on shutdown.

mod common;
#[path = "demo/support.rs"]
mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use common::PassedSocket;
use support::{post, post_raw, post_typed, FeedStream, Via};

const EVENT: Duration = Duration::from_secs(5);

fn db_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("data/posts.sqlite3")
}

#[tokio::test]
async fn two_subscribers_get_each_new_post_with_user_text_escaped() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = PassedSocket::new();
    let _server = support::start(&socket, &db_in(&dir)).await;

    let mut first = FeedStream::open(socket.addr).await;
    let mut second = FeedStream::open(socket.addr).await;
    for stream in [&mut first, &mut second] {
        let initial = stream.next_event(EVENT).await.expect("the current feed");
        assert_eq!(initial.event, "feed");
        assert!(initial.data.starts_with("<ol id=\"posts\">"), "{initial:?}");
        assert!(initial.data.contains("No posts yet"), "{initial:?}");
    }

    let message = "<script>alert(\"pwned\")</script> & more\nsecond line";
    let posted = Instant::now();
    let response = post(
        socket.addr,
        Via::Htmx,
        Some("<b>mallory</b>"),
        Some(message),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.text());

    for (name, stream) in [("first", &mut first), ("second", &mut second)] {
        let update = stream.next_event(EVENT).await.expect("an update");
        eprintln!(
            "{name} stream got the post {:.1} ms after the POST began",
            posted.elapsed().as_secs_f64() * 1000.0
        );
        assert_eq!(update.event, "feed");
        assert!(
            update.data.contains(
                "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; more\nsecond line"
            ),
            "the {name} stream should carry the escaped message: {update:?}"
        );
        assert!(
            update
                .data
                .contains("<strong class=\"username\">&lt;b&gt;mallory&lt;/b&gt;</strong>"),
            "{update:?}"
        );
        assert!(!update.data.contains("<script>"), "{update:?}");
        assert!(!update.data.contains("No posts yet"), "{update:?}");
    }

    // A second post comes first in the next update, and a JSON post counts too.
    let response = post(socket.addr, Via::Json, Some("bob"), Some("hello")).await;
    assert_eq!(response.status, 201, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(json["username"], "bob");
    assert_eq!(json["message"], "hello");
    for stream in [&mut first, &mut second] {
        let update = stream.next_event(EVENT).await.expect("an update");
        let bob = update.data.find(">bob<").expect("bob's post");
        let mallory = update.data.find("mallory").expect("the first post");
        assert!(bob < mallory, "newest first: {update:?}");
    }

    // The page shows the same, escaped too.
    let page = common::get(socket.addr, "/posts")
        .await
        .expect("GET /posts");
    let text = page.text();
    assert!(text.contains("&lt;script&gt;alert("), "{text}");
    assert!(!text.contains("<script>alert"), "{text}");
    assert_eq!(
        support::usernames_on_page(socket.addr).await,
        ["bob", "&lt;b&gt;mallory&lt;/b&gt;"]
    );
}

#[tokio::test]
async fn bad_input_gets_422_with_the_error_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = PassedSocket::new();
    let _server = support::start(&socket, &db_in(&dir)).await;
    let mut stream = FeedStream::open(socket.addr).await;
    stream.next_event(EVENT).await.expect("the current feed");

    let long_message = "m".repeat(501);
    let long_name = "n".repeat(41);
    // (username, message, field in error, words of the error)
    let cases: [(Option<&str>, Option<&str>, &str, &str); 7] = [
        (Some("ann"), Some(""), "message", "Enter a message"),
        (Some("ann"), Some(" \r\n\t "), "message", "Enter a message"),
        (Some("ann"), None, "message", "Enter a message"),
        (Some("ann"), Some(&long_message), "message", "at most 500"),
        (None, Some("hi"), "username", "Enter a name"),
        (Some("   "), Some("hi"), "username", "Enter a name"),
        (Some(&long_name), Some("hi"), "username", "at most 40"),
    ];
    for (username, message, field, words) in cases {
        let what = format!("username {username:?}, message {message:?}");

        let htmx = post(socket.addr, Via::Htmx, username, message).await;
        assert_eq!(htmx.status, 422, "htmx, {what}: {}", htmx.text());
        assert_eq!(htmx.header("hx-retarget"), Some("#post-form"), "{what}");
        assert_eq!(htmx.header("hx-reswap"), Some("morph"), "{what}");
        let fragment = htmx.text();
        assert!(
            fragment.starts_with("<form id=\"post-form\""),
            "htmx gets the form alone, {what}: {fragment}"
        );
        assert!(
            fragment.contains(&format!("id=\"{field}-error\"")) && fragment.contains(words),
            "the form should show {words:?} for {field}, {what}: {fragment}"
        );
        assert!(!fragment.contains("<html"), "{what}: {fragment}");

        let form = post(socket.addr, Via::Form, username, message).await;
        assert_eq!(form.status, 422, "form, {what}: {}", form.text());
        let page = form.text();
        assert!(
            page.contains("<html") && page.contains(words),
            "{what}: {page}"
        );

        let json = post(socket.addr, Via::Json, username, message).await;
        assert_eq!(json.status, 422, "JSON, {what}: {}", json.text());
        let body: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON");
        let error = body["errors"][field].as_str().unwrap_or_default();
        assert!(error.contains(words), "JSON, {what}: {body}");
    }

    // What was typed comes back in the form, escaped.
    let response = post(
        socket.addr,
        Via::Htmx,
        Some("<i>eve</i>"),
        Some(&format!("<script>{long_message}")),
    )
    .await;
    assert_eq!(response.status, 422);
    let fragment = response.text();
    assert!(
        fragment.contains("value=\"&lt;i&gt;eve&lt;/i&gt;\""),
        "{fragment}"
    );
    assert!(fragment.contains(">&lt;script&gt;mmm"), "{fragment}");

    // Bodies that cannot be read at all.
    let malformed = post_raw(socket.addr, Via::Json, "{\"username\": ").await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    let wrong_type = post_typed(socket.addr, "text/plain", "", "username=a&message=b").await;
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text());

    assert!(
        stream
            .event_within(Duration::from_millis(300))
            .await
            .is_none(),
        "no update after bad input"
    );
    assert!(support::usernames_on_page(socket.addr).await.is_empty());
}

#[tokio::test]
async fn a_body_over_16_kib_gets_413_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = PassedSocket::new();
    let _server = support::start(&socket, &db_in(&dir)).await;

    // At the limit the body is read (and this one is refused for its length).
    let at_limit = format!("username=ann&message={}", "m".repeat(16 * 1024 - 21));
    assert_eq!(at_limit.len(), 16 * 1024);
    let response = post_raw(socket.addr, Via::Htmx, &at_limit).await;
    assert_eq!(response.status, 422, "{}", response.text());

    let over = format!("{at_limit}m");
    for via in [Via::Htmx, Via::Form] {
        let response = post_raw(socket.addr, via, &over).await;
        assert_eq!(response.status, 413, "{via:?}: {}", response.text());
    }
    let json = format!(
        "{{\"username\":\"ann\",\"message\":\"{}\"}}",
        "m".repeat(16 * 1024)
    );
    let response = post_raw(socket.addr, Via::Json, &json).await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(support::usernames_on_page(socket.addr).await.is_empty());
}

#[tokio::test]
async fn posts_survive_a_restart_of_the_process() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = db_in(&dir);
    let socket = PassedSocket::new();

    let mut server = support::start(&socket, &db).await;
    let response = post(
        socket.addr,
        Via::Form,
        Some("ann"),
        Some("kept across restarts"),
    )
    .await;
    assert_eq!(response.status, 303, "{}", response.text());
    assert_eq!(response.header("location"), Some("/posts"));
    let response = post(socket.addr, Via::Json, Some("bob"), Some("me too")).await;
    assert_eq!(response.status, 201, "{}", response.text());
    assert!(db.exists(), "the database should be at {}", db.display());

    server.signal(Signal::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("the server should exit after SIGINT");
    assert!(status.success(), "exit status {status}");

    let _server = support::start(&socket, &db).await;
    assert_eq!(
        support::usernames_on_page(socket.addr).await,
        ["bob", "ann"]
    );
    let mut stream = FeedStream::open(socket.addr).await;
    let initial = stream.next_event(EVENT).await.expect("the current feed");
    assert!(initial.data.contains("kept across restarts"), "{initial:?}");
}

#[tokio::test]
async fn feed_streams_end_on_shutdown_so_the_process_exits_at_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = PassedSocket::new();
    let mut server = support::start(&socket, &db_in(&dir)).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = FeedStream::open(socket.addr).await;
        stream.next_event(EVENT).await.expect("the current feed");
        streams.push(stream);
    }

    let signalled = Instant::now();
    server.signal(Signal::SIGINT);
    for stream in &mut streams {
        assert!(
            stream.ends_within(Duration::from_secs(1)).await,
            "a feed stream should end on shutdown"
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(1))
        .expect("the server should exit well before its 2 s drain deadline");
    assert!(status.success(), "exit status {status}");
    eprintln!(
        "3 feed streams ended and the process exited {} ms after SIGINT",
        signalled.elapsed().as_millis()
    );
}

/// Several processes creating the same fresh database at once (tests side by side
/// on a fresh checkout) all start: switching a new file to WAL mode is retried.
#[test]
fn processes_may_create_the_database_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fresh/posts.sqlite3");
    let mut children: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(common::BIN)
                .args(["--addr", "127.0.0.1:0", "--db", db.to_str().expect("utf-8")])
                .env("RUST_LOG", "off")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut failures = Vec::new();
    for child in &mut children {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            failures.push(format!("{status}: {stderr}"));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        failures.is_empty(),
        "processes that did not start: {failures:?}"
    );
}
