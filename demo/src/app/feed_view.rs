//! The feed's HTML: the page, the post form and the list of posts. maud escapes
//! every value, so user text shows as text.

use maud::{html, Markup, PreEscaped};

use super::form::{FieldErrors, MESSAGE_MAX_CHARS, USERNAME_MAX_CHARS};
use super::pages;
use super::store::Post;

/// Path of the feed page; the form posts to it too.
pub(crate) const PAGE_PATH: &str = "/posts";
/// Path of the feed's event stream.
pub(crate) const EVENTS_PATH: &str = "/posts/events";
/// Name of the event that carries the rendered list of posts.
pub(crate) const FEED_EVENT: &str = "feed";

/// htmx swaps 2xx responses and, here, 422 too (the form with its errors); other
/// 4xx and 5xx are not swapped and `static/feed.js` shows them.
const HTMX_CONFIG: &str = r#"{"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},{"code":"[45]..","swap":false,"error":true},{"code":"...","swap":true}]}"#;

/// What the form shows: the values typed and what is wrong with them.
#[derive(Clone, Debug, Default)]
pub(crate) struct FormState {
    pub(crate) username: String,
    pub(crate) message: String,
    pub(crate) errors: FieldErrors,
}

/// The feed page. `posts` is the rendered list ([`posts`]); `shared_stream` loads
/// the script that shares one event stream between every tab of the browser.
pub(crate) fn page(posts: &str, form_state: &FormState, shared_stream: bool) -> Markup {
    let title = "Live feed";
    pages::layout(
        title,
        html! {
            meta name="htmx-config" content=(HTMX_CONFIG);
            script defer src="/static/vendor/htmx.min.js" {}
            script defer src="/static/vendor/sse.min.js" {}
            script defer src="/static/vendor/idiomorph-ext.min.js" {}
            @if shared_stream {
                script defer src="/static/shared-event-source.js" {}
            }
            script defer src="/static/feed.js" {}
        },
        html! {
            div hx-ext="sse,morph" {
                (pages::header(title))
                main {
                    (form(form_state))
                    section #feed aria-labelledby="feed-title"
                        sse-connect=(EVENTS_PATH) sse-swap=(FEED_EVENT)
                        hx-target="#posts" hx-swap="morph:{ignoreActiveValue:true}" {
                        h2 #feed-title { "Posts" }
                        (PreEscaped(posts))
                    }
                }
            }
        },
    )
}

/// The post form, with the errors of the last attempt. htmx posts it and swaps
/// nothing on success; a 422 answer replaces it (see `feed::create`).
pub(crate) fn form(state: &FormState) -> Markup {
    let errors = &state.errors;
    html! {
        form #post-form method="post" action=(PAGE_PATH) hx-post=(PAGE_PATH) hx-swap="none" {
            p.field {
                label for="username" { "Name" }
                input #username name="username" type="text" autocomplete="nickname"
                    required maxlength=(USERNAME_MAX_CHARS) value=(state.username)
                    aria-invalid=[errors.username.as_ref().map(|_| "true")]
                    aria-describedby=[errors.username.as_ref().map(|_| "username-error")];
                @if let Some(error) = &errors.username {
                    span.error #username-error { (error) }
                }
            }
            p.field {
                label for="message" { "Message" }
                textarea #message name="message" rows="3"
                    required maxlength=(MESSAGE_MAX_CHARS)
                    aria-invalid=[errors.message.as_ref().map(|_| "true")]
                    aria-describedby=[errors.message.as_ref().map(|_| "message-error")] {
                    (state.message)
                }
                @if let Some(error) = &errors.message {
                    span.error #message-error { (error) }
                }
            }
            p.actions {
                button type="submit" { "Post" }
                " "
                span #post-status role="status" {}
            }
        }
    }
}

/// The list of posts, newest first: what the page shows and what every update
/// pushes, swapped in by idiomorph's morph.
pub(crate) fn posts(posts: &[Post]) -> Markup {
    html! {
        ol #posts {
            @for post in posts {
                li.post id={"post-" (post.id)} {
                    p.meta {
                        strong.username { (post.username) }
                        " "
                        time datetime=(rfc3339(post.created_at)) { (human_time(post.created_at)) }
                    }
                    p.message { (post.message) }
                }
            }
            @if posts.is_empty() {
                li.empty { "No posts yet: write the first one." }
            }
        }
    }
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(seconds: i64) -> String {
    let (date, (hour, minute, second)) = civil(seconds);
    format!("{date}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `seconds` since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
fn human_time(seconds: i64) -> String {
    let (date, (hour, minute, _)) = civil(seconds);
    format!("{date} {hour:02}:{minute:02} UTC")
}

/// The UTC date (`YYYY-MM-DD`) and time of day of `seconds` since the Unix epoch
/// (the days-to-civil algorithm of Howard Hinnant's `chrono`-compatible date
/// library).
fn civil(seconds: i64) -> (String, (i64, i64, i64)) {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        (of_day / 3600, of_day % 3600 / 60, of_day % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human_time(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn escapes_user_text() {
        let html = posts(&[Post {
            id: 1,
            username: "<b>ann</b>".into(),
            message: "<script>alert(1)</script>".into(),
            created_at: 0,
        }])
        .into_string();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>"));
    }
}
