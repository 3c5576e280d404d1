//! The demo's live feed over real HTTP: every stream gets each new post, user text
//! is escaped, bad input gets a 4xx and stores nothing, posts survive a
//! restart of the process, and the streams end on shutdown.

#[path = "../../tests/demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dev_support::http::{self, Response};
use dev_support::socket::PassedSocket;
use dev_support::sse::EventStream;
use nix::sys::signal::Signal;

const EVENT: Duration = Duration::from_secs(5);

/// How a post is sent, its `Content-Type` and other header lines: a form as htmx
/// sends it, a form as a browser without JavaScript sends it, a JSON object, and
/// plain text, which no form sends.
const HTMX: &str = "application/x-www-form-urlencoded\r\nHX-Request: true\r\nHX-Target: post-form";
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain";

/// `POST /posts` with `username` and `message` (each left out when `None`).
async fn post(addr: SocketAddr, via: &str, name: Option<&str>, message: Option<&str>) -> Response {
    let fields = [("username", name), ("message", message)];
    let fields = fields
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)));
    let body = if via == JSON {
        let object = fields
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        serde_json::Value::Object(object).to_string()
    } else {
        serde_urlencoded::to_string(fields.collect::<Vec<_>>()).expect("form encoding")
    };
    post_raw(addr, via, &body).await
}

/// `POST /posts` with `body` as it is, typed `via`.
async fn post_raw(addr: SocketAddr, via: &str, body: &str) -> Response {
    let headers = format!("Host: localhost\r\nOrigin: http://localhost\r\nContent-Type: {via}\r\n");
    http::send(addr, "POST /posts", &headers, body).await
}

/// `GET /posts/events`, a chunked 200 `text/event-stream`, and its first event:
/// the current feed.
async fn feed(addr: SocketAddr) -> (EventStream, String) {
    let (stream, feed) = EventStream::opened(addr, "/posts/events", "feed").await;
    stream.assert_head();
    (stream, feed)
}

/// The next feed update on `stream`.
async fn update(stream: &mut EventStream) -> String {
    let (name, feed) = stream.event(EVENT).await;
    assert_eq!(name, "feed");
    feed
}

/// The posts' usernames on the feed page, newest first.
async fn usernames_on_page(addr: SocketAddr) -> Vec<String> {
    let page = http::get(addr, "/posts").await.expect("GET /posts");
    assert_eq!(page.status, 200, "GET /posts: {}", page.text());
    let text = page.text();
    (text.split("<strong class=\"username\">").skip(1))
        .filter_map(|rest| Some(rest.split_once("</strong>")?.0.to_owned()))
        .collect()
}

#[tokio::test]
async fn two_subscribers_get_each_new_post_with_user_text_escaped() {
    let (addr, _server) = demo::serving(&[]).await;
    let (mut first, initial) = feed(addr).await;
    let (mut second, initial_too) = feed(addr).await;
    for initial in [initial, initial_too] {
        assert!(initial.starts_with("<ol id=\"posts\">"), "{initial}");
        demo::assert_contains(&initial, &["No posts yet"]);
    }

    let message = "<script>alert(\"pwned\")</script> & more\nsecond line";
    let posted = Instant::now();
    let response = post(addr, HTMX, Some("<b>mallory</b>"), Some(message)).await;
    assert_eq!(response.status, 201, "{}", response.text());
    let escaped = [
        "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; more\nsecond line",
        "<strong class=\"username\">&lt;b&gt;mallory&lt;/b&gt;</strong>",
    ];
    for (name, stream) in [("first", &mut first), ("second", &mut second)] {
        let update = update(stream).await;
        let ms = posted.elapsed().as_secs_f64() * 1000.0;
        eprintln!("{name} stream got the post {ms:.1} ms after the POST began");
        demo::assert_contains(&update, &escaped);
        assert!(!update.contains("<script>"), "{update}");
        assert!(!update.contains("No posts yet"), "{update}");
    }

    // A second post comes first in the next update, and a JSON post counts too.
    let response = post(addr, JSON, Some("bob"), Some("hello")).await;
    assert_eq!(response.status, 201, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(json["username"], "bob");
    assert_eq!(json["message"], "hello");
    for stream in [&mut first, &mut second] {
        let update = update(stream).await;
        let bob = update.find(">bob<").expect("bob's post");
        let mallory = update.find("mallory").expect("the first post");
        assert!(bob < mallory, "newest first: {update}");
    }

    // The page shows the same, escaped too.
    let page = http::get(addr, "/posts").await.expect("GET /posts").text();
    demo::assert_contains(&page, &["&lt;script&gt;alert("]);
    assert!(!page.contains("<script>alert"), "{page}");
    let usernames = usernames_on_page(addr).await;
    assert_eq!(usernames, ["bob", "&lt;b&gt;mallory&lt;/b&gt;"]);
}

/// 422 with the error; 400, 415 or 413 for a body that cannot be read at all.
#[tokio::test]
async fn bad_input_gets_a_4xx_with_the_error_and_stores_nothing() {
    let (addr, _server) = demo::serving(&[]).await;
    let (mut stream, _) = feed(addr).await;

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

        let htmx = post(addr, HTMX, username, message).await;
        assert_eq!(htmx.status, 422, "htmx, {what}: {}", htmx.text());
        assert_eq!(htmx.header("hx-retarget"), Some("#post-form"), "{what}");
        assert_eq!(htmx.header("hx-reswap"), Some("morph"), "{what}");
        // The form alone, with the error.
        let fragment = htmx.text();
        let form = fragment.starts_with("<form id=\"post-form\"");
        assert!(form, "{what}: {fragment}");
        assert!(!fragment.contains("<html"), "{what}: {fragment}");
        demo::assert_contains(&fragment, &[&format!("id=\"{field}-error\""), words]);

        let form = post(addr, FORM, username, message).await;
        assert_eq!(form.status, 422, "form, {what}: {}", form.text());
        demo::assert_contains(&form.text(), &["<html", words]);

        let json = post(addr, JSON, username, message).await;
        assert_eq!(json.status, 422, "JSON, {what}: {}", json.text());
        let body: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON");
        let error = body["errors"][field].as_str().unwrap_or_default();
        assert!(error.contains(words), "JSON, {what}: {body}");
    }

    // What was typed comes back in the form, escaped.
    let typed = format!("<script>{long_message}");
    let response = post(addr, HTMX, Some("<i>eve</i>"), Some(&typed)).await;
    assert_eq!(response.status, 422);
    let escaped = ["value=\"&lt;i&gt;eve&lt;/i&gt;\"", ">&lt;script&gt;mmm"];
    demo::assert_contains(&response.text(), &escaped);

    // Bodies that cannot be read at all.
    let malformed = post_raw(addr, JSON, "{\"username\": ").await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    let wrong_type = post_raw(addr, TEXT, "username=a&message=b").await;
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text());
    // At the 16 KiB limit the body is read (and this one is refused for its
    // length); over it, 413.
    let at_limit = format!("username=ann&message={}", "m".repeat(16 * 1024 - 21));
    assert_eq!(at_limit.len(), 16 * 1024);
    let response = post_raw(addr, HTMX, &at_limit).await;
    assert_eq!(response.status, 422, "{}", response.text());
    let over = format!("{at_limit}m");
    let m = "m".repeat(16 * 1024);
    let json = format!("{{\"username\":\"ann\",\"message\":\"{m}\"}}");
    for (via, body) in [(HTMX, &over), (FORM, &over), (JSON, &json)] {
        let response = post_raw(addr, via, body).await;
        assert_eq!(response.status, 413, "{via}: {}", response.text());
    }

    let update = stream.next_within(Duration::from_millis(300)).await;
    assert!(update.is_none(), "no update after bad input: {update:?}");
    assert!(usernames_on_page(addr).await.is_empty());
}

#[tokio::test]
async fn posts_survive_a_restart_of_the_process() {
    // In a directory that does not exist yet.
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("data/posts.sqlite3");
    let (socket, db_arg) = (PassedSocket::new(), ["--db", db.to_str().expect("UTF-8")]);
    let addr = socket.addr;
    let mut server = demo::start(&socket, &db_arg).await;
    let response = post(addr, FORM, Some("ann"), Some("kept across restarts")).await;
    assert_eq!(response.status, 303, "{}", response.text());
    assert_eq!(response.header("location"), Some("/posts"));
    let response = post(addr, JSON, Some("bob"), Some("me too")).await;
    assert_eq!(response.status, 201, "{}", response.text());
    assert!(db.exists(), "the database should be at {}", db.display());

    server.signal(Signal::SIGINT);
    demo::assert_exits_cleanly(&mut server, Duration::from_secs(5), "after SIGINT");

    let _server = demo::start(&socket, &db_arg).await;
    assert_eq!(usernames_on_page(addr).await, ["bob", "ann"]);
    let (_, initial) = feed(addr).await;
    demo::assert_contains(&initial, &["kept across restarts"]);
}

#[tokio::test]
async fn feed_streams_end_on_shutdown_so_the_process_exits_at_once() {
    let (addr, mut server) = demo::serving(&[]).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(feed(addr).await.0);
    }

    let signalled = Instant::now();
    server.signal(Signal::SIGINT);
    for stream in &mut streams {
        let ended = stream.ends_within(Duration::from_secs(1)).await;
        assert!(ended, "a feed stream should end on shutdown");
    }
    let why = "well before its 2 s drain deadline";
    demo::assert_exits_cleanly(&mut server, Duration::from_secs(1), why);
    let ms = signalled.elapsed().as_millis();
    eprintln!("3 feed streams ended and the process exited {ms} ms after SIGINT");
}

/// Several processes creating the same fresh database at once (tests side by side
/// on a fresh checkout) all start: switching a new file to WAL mode is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_may_create_the_database_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fresh/posts.sqlite3");
    let db = db.to_str().expect("utf-8");
    let start = |_| {
        let socket = PassedSocket::new();
        let mut command = demo::command(&["--db", db]);
        command.env("RUST_LOG", "off");
        socket.pass_to(&mut command);
        (socket, demo::spawn(command))
    };
    let mut processes: Vec<_> = (0..6).map(start).collect();
    // Each one either serves (it opened the database) or exits: only then did the
    // race happen.
    for (socket, process) in &mut processes {
        let deadline = Instant::now() + demo::READY;
        while process.exited().is_none() {
            let page = tokio::time::timeout(Duration::from_secs(1), http::get(socket.addr, "/"));
            if let Ok(Ok(page)) = page.await {
                assert_eq!(page.status, 200, "GET / on a fresh database");
                break;
            }
            let late = Instant::now() >= deadline;
            assert!(!late, "neither serving nor exited within {:?}", demo::READY);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let failures: Vec<String> = (processes.iter_mut())
        .filter_map(|(_, process)| Some(format!("{}: {}", process.exited()?, process.log_text())))
        .collect();
    assert!(failures.is_empty(), "did not start: {failures:?}");
}
