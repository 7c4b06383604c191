//! Text that reaches a log line (DESIGN.md section 8; issue 7 item 3): the access log prints
//! proofgate's filter state as PLAIN text, so a value with a line break, a quote or an invisible
//! formatting character could forge or disguise a log line. Every such character is written as
//! an escape (`\xNN` or `\u{NNNN}`), and unverified text is also cut to a bound.

use core::fmt::Write;

/// Longest unverified value kept (in characters, before escaping), for `unverified_*` fields.
pub const UNVERIFIED_MAX_CHARS: usize = 64;

/// `s` with every character that could break or disguise a plain-text log field escaped:
/// controls, whitespace (a field separator), `"` and `\`, and invisible or reordering format
/// characters (zero-width, bidirectional controls, line and paragraph separators).
pub fn escape(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    push_escaped(&mut out, s.chars());
    out
}

/// [`escape`] of at most the first `max_chars` characters of `s`, with `...` appended when cut.
pub fn escape_bounded(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(max_chars.min(s.len()) + 8);
    push_escaped(&mut out, s.chars().take(max_chars));
    if s.chars().nth(max_chars).is_some() {
        out.push_str("...");
    }
    out
}

fn push_escaped(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        if !needs_escape(c) {
            out.push(c);
        } else if u32::from(c) < 0x80 {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || c == '"'
        || c == '\\'
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_unchanged() {
        let s = "spiffe://example.local/ns/orders/sa/caller-1";
        assert_eq!(escape(s), s);
        assert_eq!(escape("élan"), "élan");
    }

    #[test]
    fn line_breaks_quotes_and_invisible_characters_are_escaped() {
        assert_eq!(
            escape("admin\nINJECTED 200 allow subject=root"),
            "admin\\x0aINJECTED\\x20200\\x20allow\\x20subject=root"
        );
        assert_eq!(escape("a\r\"b\\\t\u{7f}"), "a\\x0d\\x22b\\x5c\\x09\\x7f");
        assert_eq!(
            escape("x\u{2028}y\u{202e}z\u{200b}\u{85}"),
            "x\\u{2028}y\\u{202e}z\\u{200b}\\u{0085}"
        );
        assert!(!escape("a\u{2029}\u{0}b").chars().any(needs_escape_raw));
    }

    fn needs_escape_raw(c: char) -> bool {
        c.is_control() || c == '\u{2029}'
    }

    #[test]
    fn bounded_counts_characters_and_marks_the_cut() {
        assert_eq!(escape_bounded("abc", 3), "abc");
        assert_eq!(escape_bounded("abcd", 3), "abc...");
        assert_eq!(escape_bounded("é\né", 2), "é\\x0a...");
        let long = "x".repeat(10_000);
        assert_eq!(
            escape_bounded(&long, UNVERIFIED_MAX_CHARS).len(),
            UNVERIFIED_MAX_CHARS + 3
        );
    }
}
