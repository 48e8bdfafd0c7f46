//! Every rule about subjects in one place: our tag `[ACME #42]`, reply prefixes, titles.
//!
//! - [`find_tag`] reads a tag back, tolerant of reply prefixes in many languages, case,
//!   spacing, full-width brackets and number signs, and a link a client put inside the
//!   brackets (DESIGN.md "Subject tag and addresses"). Bounded work on any input.
//! - [`tag_token`] writes one; [`clean_subject`] gives a ticket's title (no prefixes, no tags).
//! - Pure: no I/O; strangers' subjects never panic it (property tests below).

use crate::model::TicketId;

/// Finds `[TAG #N]` in a subject, tolerant of reply prefixes, case, extra spaces,
/// full-width brackets and number signs, and clients that put a link inside the brackets.
pub fn find_tag(subject: &str, tag: &str) -> Option<TicketId> {
    let chars: Vec<char> = subject.chars().collect();
    let tag_chars: Vec<char> = tag.chars().flat_map(char::to_lowercase).collect();
    for start in 0..chars.len() {
        if !matches!(chars[start], '[' | '［' | '【' | '(' | '（') {
            continue;
        }
        if let Some(id) = tag_at(&chars, start + 1, &tag_chars) {
            return Some(id);
        }
    }
    None
}

fn tag_at(chars: &[char], mut i: usize, tag: &[char]) -> Option<TicketId> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    for want in tag {
        let got = chars.get(i)?.to_lowercase().next()?;
        if got != *want {
            return None;
        }
        i += 1;
    }
    // The tag must end here: `[ACMEX #1]` is not `[ACME #1]`.
    if chars.get(i).is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    // Up to the number sign: spaces, or a link a client inserted (bounded).
    let limit = i + 200;
    while i < chars.len() && i < limit && !matches!(chars[i], '#' | '＃') {
        if matches!(chars[i], ']' | '］' | '】' | '[' | '［' | '【') {
            return None;
        }
        i += 1;
    }
    if !matches!(chars.get(i), Some('#' | '＃')) {
        return None;
    }
    i += 1;
    let digits_start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start || i - digits_start > 15 {
        return None;
    }
    let n: i64 = chars[digits_start..i]
        .iter()
        .collect::<String>()
        .parse()
        .ok()?;
    // Then the closing bracket, after spaces or a trailing link.
    let limit = i + 200;
    while i < chars.len() && i < limit {
        match chars[i] {
            ']' | '］' | '】' | ')' | '）' => return (n > 0).then(|| TicketId::new(n)),
            '[' | '［' | '【' => return None,
            _ => i += 1,
        }
    }
    None
}

/// `[ACME #42]`
pub fn tag_token(tag: &str, ticket: TicketId) -> String {
    format!("[{tag} #{ticket}]")
}

/// The subject without reply prefixes or our tags, for a new ticket's title and
/// `Thread-Topic`. Linear: each round strips what it reads (40,000 `Re: ` are one pass).
pub fn clean_subject(subject: &str, tags: &[String]) -> String {
    let mut s = subject.trim();
    loop {
        let before = s.len();
        s = strip_reply_prefix(s);
        for tag in tags {
            if let Some(rest) = strip_tag_token(s, tag) {
                s = rest.trim_start();
            }
        }
        if s.len() == before {
            break;
        }
    }
    let s = s.trim_end();
    if s.is_empty() {
        "(no subject)".to_owned()
    } else {
        s.to_owned()
    }
}

/// `s` after our tag token as [`tag_token`] writes it (`[ACME #42]`), when it starts with
/// one; reads only the token.
fn strip_tag_token<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let rest = s.strip_prefix('[')?.strip_prefix(tag)?.strip_prefix(" #")?;
    let digits = rest.bytes().take(16).take_while(u8::is_ascii_digit).count();
    let n: i64 = rest.get(..digits)?.parse().ok()?;
    let after = rest[digits..].strip_prefix(']')?;
    (digits <= 15 && n > 0 && rest[..digits] == n.to_string()).then_some(after)
}

/// Strips one `Re:`-style prefix (any common language, ASCII or full-width colon).
pub fn strip_reply_prefix(s: &str) -> &str {
    const PREFIXES: [&str; 14] = [
        "re", "aw", "sv", "vs", "antw", "wg", "fw", "fwd", "tr", "回复", "答复", "转发", "回覆",
        "轉寄",
    ];
    let t = s.trim_start();
    for p in PREFIXES {
        if t.len() >= p.len() && t.is_char_boundary(p.len()) && t[..p.len()].eq_ignore_ascii_case(p)
        {
            let rest = t[p.len()..].trim_start();
            // `Re[2]:` as some clients write it.
            let rest = match rest.strip_prefix('[') {
                Some(r) => {
                    let end = r.bytes().take_while(u8::is_ascii_digit).count();
                    match r[end..].strip_prefix(']') {
                        Some(after) => after.trim_start(),
                        None => rest,
                    }
                }
                None => rest,
            };
            if let Some(r) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：')) {
                return r.trim_start();
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tag_behind_reply_prefixes() {
        let cases: &[(&str, Option<i64>)] = &[
            ("[ACME #42] Printer", Some(42)),
            ("Re: AW: [ACME #42] x", Some(42)),
            ("RE:  [ acme  #42 ] x", Some(42)),
            ("回复：[acme #42] 打印机", Some(42)),
            ("答复: 【ACME ＃7】 打印机", Some(7)),
            ("Printer broken [ACME #42]", Some(42)),
            ("Fwd: [ACME <https://acme.example/> #42] x", Some(42)),
            ("[OTHER #42] x", None),
            ("[ACMEX #42] x", None),
            ("[ACME #] x", None),
            ("[ACME #0] x", None),
            ("[ACME #42 x", None),
            ("no tag", None),
        ];
        for (subject, want) in cases {
            assert_eq!(
                find_tag(subject, "ACME").map(TicketId::get),
                *want,
                "subject: {subject}"
            );
        }
    }

    #[test]
    fn clean_subject_strips_prefixes_and_tags() {
        let tags = vec!["ACME".to_owned()];
        for (input, want) in [
            ("Printer offline", "Printer offline"),
            ("Re: Printer offline", "Printer offline"),
            ("RE: AW: Fwd: Printer offline", "Printer offline"),
            ("回复：打印机", "打印机"),
            ("Re: [ACME #4] Printer", "Printer"),
            ("Re[2]: x", "x"),
            ("Regarding the invoice", "Regarding the invoice"),
            ("", "(no subject)"),
        ] {
            assert_eq!(clean_subject(input, &tags), want, "{input}");
        }
    }

    #[test]
    fn forty_thousand_prefixes_are_one_pass() {
        let tags = vec!["ACME".to_owned()];
        let subject = format!("{}[ACME #4] Re[2]: x", "Re: ".repeat(40_000));
        assert_eq!(clean_subject(&subject, &tags), "x");
        assert_eq!(find_tag(&subject, "ACME"), Some(TicketId::new(4)));
        let brackets = format!("{}x", "Re[".repeat(40_000));
        assert_eq!(clean_subject(&brackets, &tags), brackets);
        assert_eq!(find_tag(&"[ACME #".repeat(40_000), "ACME"), None);
    }

    #[test]
    fn only_our_written_token_is_stripped() {
        for (input, want) in [
            ("[ACME #42] x", Some(" x")),
            ("[ACME #42]", Some("")),
            ("[acme #42] x", None),
            ("[ACME #042] x", None),
            ("[ACME #0] x", None),
            ("[ACME #1234567890123456] x", None),
            ("[ACME #42 x", None),
            ("x [ACME #42]", None),
        ] {
            assert_eq!(strip_tag_token(input, "ACME"), want, "{input}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn prefix() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "",
                "Re: ",
                "RE: ",
                "AW: ",
                "SV: ",
                "Antw: ",
                "回复: ",
                "答复：",
                "转发: ",
                "Fwd: ",
                "FW: ",
                "Re: Re: ",
                "  re:  ",
            ])
            .prop_map(str::to_owned)
        }

        proptest! {
            /// Any prefix chain, case and bracket style around a well-formed tag finds it.
            #[test]
            fn tolerant_tag_is_found(
                pre in prefix(), pre2 in prefix(), n in 1i64..10_000_000,
                lower in any::<bool>(), fullwidth in any::<bool>(), spaces in 0usize..3,
                subject in "[a-zA-Z0-9 打印机]{0,30}", at_end in any::<bool>(),
            ) {
                let tag = if lower { "acme" } else { "ACME" };
                let (open, close, hash) = if fullwidth { ("［", "］", "＃") } else { ("[", "]", "#") };
                let pad = " ".repeat(spaces);
                let token = format!("{open}{pad}{tag}{pad} {hash}{n}{pad}{close}");
                let s = if at_end { format!("{pre}{pre2}{subject} {token}") } else { format!("{pre}{pre2}{token} {subject}") };
                prop_assert_eq!(find_tag(&s, "ACME"), Some(TicketId::new(n)), "{}", s);
            }

            /// Strangers' bytes never panic the parser, and nothing matches without the tag.
            #[test]
            fn arbitrary_subjects_never_panic(s in "\\PC{0,200}") {
                if let Some(id) = find_tag(&s, "ACME") {
                    prop_assert!(s.to_lowercase().contains("acme"), "{} gave {}", s, id);
                }
            }

        }
    }
}
