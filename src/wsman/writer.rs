//! Small helpers to write XML text without a DOM: envelopes are short and fixed in shape.

use std::fmt::Write;

/// Appends `text` with the five XML special characters escaped (also in attribute values).
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(pos) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..pos]);
        out.push_str(match rest.as_bytes()[pos] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&apos;",
        });
        rest = &rest[pos + 1..];
    }
    out.push_str(rest);
}

/// `<tag>escaped text</tag>`
pub(crate) fn element(out: &mut String, tag: &str, text: &str) {
    let _ = write!(out, "<{tag}>");
    escape_into(out, text);
    let _ = write!(out, "</{tag}>");
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_all_five_specials() {
        let mut out = String::new();
        super::escape_into(&mut out, r#"a&b<c>d"e'f"#);
        assert_eq!(out, "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    }
}
