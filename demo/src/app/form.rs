//! The post form's input: reading the request body (a form or JSON) and checking it.

use http::{header, HeaderMap};
use serde::{Deserialize, Serialize};

use super::store::NewPost;

/// The most characters a message may have, after trimming.
pub(crate) const MESSAGE_MAX_CHARS: usize = 500;
/// The most characters a username may have, after trimming.
pub(crate) const USERNAME_MAX_CHARS: usize = 40;

/// How the client sent the post, which decides how it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    /// htmx (`HX-Request: true`): answered with fragments.
    Htmx,
    /// A plain HTML form, without JavaScript: answered with pages and redirects.
    Browser,
    /// `Content-Type: application/json`: answered with JSON.
    Json,
}

impl Client {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        if body_kind(headers) == Some(BodyKind::Json) {
            Self::Json
        } else if headers
            .get("hx-request")
            .is_some_and(|value| value.as_bytes() == b"true")
        {
            Self::Htmx
        } else {
            Self::Browser
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
}

fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Some(BodyKind::Form)
    } else if essence.eq_ignore_ascii_case("application/json")
        || essence
            .get(essence.len().saturating_sub(5)..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
    {
        Some(BodyKind::Json)
    } else {
        None
    }
}

/// The fields as sent, before any check; missing ones are `None`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct RawPost {
    #[serde(default)]
    pub(crate) username: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// Why a body could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// 415: neither `application/x-www-form-urlencoded` nor JSON.
    #[error("send application/x-www-form-urlencoded or application/json")]
    UnsupportedType,
    /// 400: the body does not parse as its type says.
    #[error("malformed body: {0}")]
    Malformed(String),
}

/// Read the body as the `Content-Type` says.
pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<RawPost, BodyError> {
    match body_kind(headers) {
        Some(BodyKind::Form) => {
            serde_urlencoded::from_bytes(body).map_err(|err| BodyError::Malformed(err.to_string()))
        }
        Some(BodyKind::Json) => {
            serde_json::from_slice(body).map_err(|err| BodyError::Malformed(err.to_string()))
        }
        None => Err(BodyError::UnsupportedType),
    }
}

/// What is wrong with each field; `None` where the field is fine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct FieldErrors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

/// Check a post: a username of 1 to 40 characters and a message of 1 to 500, both
/// counted after trimming whitespace and turning `\r\n` into `\n` (as browsers
/// count `maxlength`).
pub(crate) fn validate(raw: &RawPost) -> Result<NewPost, FieldErrors> {
    let username = clean(raw.username.as_deref());
    let message = clean(raw.message.as_deref());
    let errors = FieldErrors {
        username: check(&username, "a name", USERNAME_MAX_CHARS),
        message: check(&message, "a message", MESSAGE_MAX_CHARS),
    };
    if errors == FieldErrors::default() {
        Ok(NewPost { username, message })
    } else {
        Err(errors)
    }
}

fn clean(value: Option<&str>) -> String {
    value.unwrap_or("").replace("\r\n", "\n").trim().to_owned()
}

fn check(value: &str, what: &str, max: usize) -> Option<String> {
    let chars = value.chars().count();
    if chars == 0 {
        Some(format!("Enter {what}."))
    } else if chars > max {
        Some(format!(
            "Use at most {max} characters for {what} ({chars} now)."
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(username: Option<&str>, message: Option<&str>) -> RawPost {
        RawPost {
            username: username.map(str::to_owned),
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn trims_and_counts_characters() {
        let ok = validate(&raw(Some("  ann "), Some(" hi\r\nthere "))).expect("valid");
        assert_eq!(ok.username, "ann");
        assert_eq!(ok.message, "hi\nthere");
        let long = "é".repeat(MESSAGE_MAX_CHARS);
        assert!(validate(&raw(Some("a"), Some(&long))).is_ok());
        let errors = validate(&raw(Some("a"), Some(&format!("{long}x")))).expect_err("too long");
        assert!(errors.message.is_some() && errors.username.is_none());
    }

    #[test]
    fn reports_every_bad_field() {
        let errors = validate(&raw(None, Some("   "))).expect_err("invalid");
        assert!(errors.username.is_some());
        assert!(errors.message.is_some());
        let name = "x".repeat(USERNAME_MAX_CHARS + 1);
        let errors = validate(&raw(Some(&name), Some("ok"))).expect_err("invalid");
        assert!(errors.username.is_some() && errors.message.is_none());
    }

    #[test]
    fn reads_forms_and_json() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8"
                .parse()
                .expect("header"),
        );
        assert_eq!(
            parse(&headers, b"username=a&message=b+c%21"),
            Ok(raw(Some("a"), Some("b c!")))
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json".parse().expect("header"),
        );
        assert_eq!(
            parse(&headers, br#"{"message":"m"}"#),
            Ok(raw(None, Some("m")))
        );
        assert!(matches!(
            parse(&headers, b"{"),
            Err(BodyError::Malformed(_))
        ));
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().expect("header"));
        assert_eq!(parse(&headers, b"x"), Err(BodyError::UnsupportedType));
    }
}
