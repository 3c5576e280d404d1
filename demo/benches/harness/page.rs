//! The HTML page the benchmarks serve and rewrite; shared by the harness and
//! the criterion bench.

/// An HTML page of exactly `size` bytes (for `size` of a few hundred bytes or
/// more): many short elements, so the injector meets a `</` every few dozen bytes,
/// and `</body></html>` at the end.
pub(crate) fn html_page(size: usize) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>bench page</title></head>\n<body>\n",
    );
    let tail = "</body></html>\n";
    for i in 0.. {
        let item = format!(
            "<p class=\"row\">Row {i}: <a href=\"/items/{i}\">item</a> <em>text</em></p>\n"
        );
        if page.len() + item.len() + tail.len() > size {
            break;
        }
        page.push_str(&item);
    }
    let padding = " ".repeat(size.saturating_sub(page.len() + tail.len()));
    page + &padding + tail
}
