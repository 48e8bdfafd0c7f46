//! Satisfaction surveys without a web server (issue 5).
//!
//! - The survey mail carries five `mailto:` links, one per rating, each to a plus-address
//!   of the queue's support address: `support+csat-42-5-<mac>@example.com`, the mac a
//!   truncated HMAC-SHA256 over ticket and rating with the instance key, so a link cannot
//!   be altered or forged. [`parse_address`] reads one back; the caller verifies the mac.
//! - A plain reply to the survey counts too when its first line is a rating:
//!   [`rating_from_text`] reads `5`, `5 stars`, `★★★★`, `excellent`, `非常满意`…
//! - Pure: no I/O; the macs come from [`InstanceKey`].

use crate::key::InstanceKey;
use crate::model::TicketId;

/// What comes after `+` in a survey address.
const PREFIX: &str = "csat-";

/// `support+csat-42-5-<mac>@example.com` for `support@example.com`.
pub fn address(support: &str, key: &InstanceKey, ticket: TicketId, rating: u8) -> String {
    let (local, domain) = support.rsplit_once('@').unwrap_or((support, ""));
    let local = local.split('+').next().unwrap_or(local);
    format!(
        "{local}+{PREFIX}{}-{rating}-{}@{domain}",
        ticket.get(),
        key.survey_mac(ticket, rating)
    )
}

/// A `mailto:` link with a prefilled subject.
pub fn link(
    support: &str,
    key: &InstanceKey,
    ticket: TicketId,
    rating: u8,
    subject: &str,
) -> String {
    format!(
        "mailto:{}?subject={}",
        address(support, key, ticket, rating),
        percent_encode(subject)
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A survey answer read from an address: ticket, rating and the mac as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ticket: TicketId,
    pub rating: u8,
    pub mac: String,
}

/// Reads `local+csat-42-5-mac@domain`; `None` for any other address.
pub fn parse_address(address: &str) -> Option<Answer> {
    let (local, _) = address.rsplit_once('@')?;
    let (_, tag) = local.split_once('+')?;
    let rest = tag.to_ascii_lowercase();
    let rest = rest.strip_prefix(PREFIX)?;
    let mut parts = rest.split('-');
    let ticket: i64 = parts.next()?.parse().ok()?;
    let rating: u8 = parts.next()?.parse().ok()?;
    let mac = parts.next()?.to_owned();
    if parts.next().is_some() || ticket <= 0 {
        return None;
    }
    Some(Answer {
        ticket: TicketId::new(ticket),
        rating,
        mac,
    })
}

/// True when `answer` carries the right mac for its ticket and rating (and the rating is
/// one of 1..=5).
pub fn verify(key: &InstanceKey, answer: &Answer) -> bool {
    (1..=5).contains(&answer.rating) && key.verify_survey(answer.ticket, answer.rating, &answer.mac)
}

/// A rating from the first non-empty line of a reply: `5`, `5/5`, `4 stars`, `★★★`,
/// `excellent`, `非常满意`… `None` when the line is no rating.
pub fn rating_from_text(text: &str) -> Option<u8> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let lower = line.to_lowercase();
    let stars = line.chars().filter(|c| *c == '★' || *c == '⭐').count();
    if stars > 0
        && line
            .chars()
            .all(|c| c == '★' || c == '⭐' || c == '☆' || c.is_whitespace())
    {
        return u8::try_from(stars).ok().filter(|n| (1..=5).contains(n));
    }
    let first = lower
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    if let Ok(n) = first.parse::<u8>() {
        let rest = lower.trim_start_matches(|c: char| !c.is_ascii_digit())[first.len()..].trim();
        let plausible = rest.is_empty()
            || [
                "/5", "/ 5", "star", "stars", "分", "星", "points", "of 5", "out of 5", "!", ".",
            ]
            .iter()
            .any(|s| rest.starts_with(s));
        return ((1..=5).contains(&n) && plausible).then_some(n);
    }
    // Longest phrases first: "非常不满意" before "不满意" before "满意".
    const WORDS: [(&str, u8); 16] = [
        ("非常不满意", 1),
        ("很不满意", 1),
        ("非常满意", 5),
        ("很满意", 5),
        ("不满意", 2),
        ("满意", 4),
        ("一般", 3),
        ("very poor", 1),
        ("terrible", 1),
        ("excellent", 5),
        ("very good", 5),
        ("poor", 2),
        ("bad", 2),
        ("average", 3),
        ("okay", 3),
        ("good", 4),
    ];
    let line_words = lower.trim_matches(|c: char| !c.is_alphanumeric());
    WORDS
        .iter()
        .find(|(w, _)| {
            line_words == *w
                || (line_words.starts_with(w)
                    && line_words.chars().count() <= w.chars().count() + 2)
        })
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_resist_forgery() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let key = &key;
        let t = TicketId::new(42);
        let a = address("support@example.test", key, t, 4);
        assert!(a.starts_with("support+csat-42-4-"), "{a}");
        let answer = parse_address(&a).unwrap();
        assert_eq!((answer.ticket, answer.rating), (t, 4));
        assert!(verify(key, &answer));
        // Changing the rating or the ticket in a link breaks it.
        let forged = parse_address(&a.replace("-42-4-", "-42-5-")).unwrap();
        assert!(!verify(key, &forged));
        let forged = parse_address(&a.replace("-42-4-", "-43-4-")).unwrap();
        assert!(!verify(key, &forged));
        assert_eq!(parse_address("support@example.test"), None);
        assert_eq!(parse_address("support+comment@example.test"), None);
        let l = link("support@example.test", key, t, 5, "Rating 5 [ACME #42]");
        assert!(l.starts_with("mailto:support+csat-42-5-"), "{l}");
        assert!(
            l.ends_with("?subject=Rating%205%20%5BACME%20%2342%5D"),
            "{l}"
        );
    }

    #[test]
    fn ratings_from_replies() {
        for (text, want) in [
            ("5", Some(5)),
            ("\n  4 stars\nThanks!", Some(4)),
            ("3/5", Some(3)),
            ("★★★★★", Some(5)),
            ("★★", Some(2)),
            ("Excellent!", Some(5)),
            ("good", Some(4)),
            ("非常满意", Some(5)),
            ("满意", Some(4)),
            ("不满意", Some(2)),
            ("非常不满意", Some(1)),
            ("5分", Some(5)),
            ("9", None),
            ("0", None),
            ("The printer works again, good job", None),
            ("2026 was a good year", None),
            ("", None),
        ] {
            assert_eq!(rating_from_text(text), want, "{text:?}");
        }
    }
}
