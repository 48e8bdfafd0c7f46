//! Reply tokens: the per-agent reply address of every mail we send to an agent (DESIGN.md
//! invariant 5). A reply to it from that agent's address is the agent's proof.
//!
//! - Form: `r-<ticket>-<agent>-<mac>` where the mailbox's `reply_address` has `{token}`;
//!   by default `<local>+{token}@<domain>`, so `support+r-42-bob-0123456789abcdef@example.com`.
//! - The mac is 64 bits of HMAC-SHA256 over ticket and agent name with the instance key
//!   ([`InstanceKey::reply_mac`]): a token cannot be made for another ticket or another
//!   agent, and forwarding a relay to a colleague hands over no right to act (the token
//!   names the agent, the workflow checks it against `From`).
//! - All lower case, read back case-insensitively: mail servers that fold local parts
//!   keep it valid. Agent names are `[a-z0-9._-]` (config), so the form is unambiguous
//!   (the ticket is the first field, the mac the last).
//! - Pure: [`find`] reads tokens out of addresses; [`Token::verify`] checks the mac.

use crate::key::InstanceKey;
use crate::model::TicketId;

/// A reply token as written in an address (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token {
    pub ticket: TicketId,
    pub agent: String,
    pub mac: String,
}

impl Token {
    /// True when the mac is right for ticket and agent.
    pub fn verify(&self, key: &InstanceKey) -> bool {
        key.verify_reply(self.ticket, &self.agent, &self.mac)
    }
}

/// `<local>+{token}@<domain>` for a support address (any `+detail` it has is dropped).
pub fn default_reply_address(support: &str) -> String {
    let support = support.trim().to_ascii_lowercase();
    let (local, domain) = support.rsplit_once('@').unwrap_or((&support, ""));
    let local = local.split('+').next().unwrap_or(local);
    format!("{local}+{{token}}@{domain}")
}

/// Agent `agent`'s reply address for `ticket`, from a mailbox's `reply_address` template.
pub fn address(template: &str, key: &InstanceKey, ticket: TicketId, agent: &str) -> String {
    let agent = agent.to_ascii_lowercase();
    let token = format!(
        "r-{}-{agent}-{}",
        ticket.get(),
        key.reply_mac(ticket, &agent)
    );
    template.replacen("{token}", &token, 1)
}

/// The token in `address` when it has the shape of `template`; `None` otherwise.
pub fn parse(template: &str, address: &str) -> Option<Token> {
    let (prefix, suffix) = template.split_once("{token}")?;
    let address = address.trim().to_ascii_lowercase();
    let text = address.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let rest = text.strip_prefix("r-")?;
    let (ticket, rest) = rest.split_once('-')?;
    let (agent, mac) = rest.rsplit_once('-')?;
    let ticket: i64 = ticket.parse().ok().filter(|t| *t > 0)?;
    let agent_ok = !agent.is_empty()
        && agent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let mac_ok = !mac.is_empty() && mac.len() <= 64 && mac.chars().all(|c| c.is_ascii_hexdigit());
    (agent_ok && mac_ok).then(|| Token {
        ticket: TicketId::new(ticket),
        agent: agent.to_owned(),
        mac: mac.to_owned(),
    })
}

/// Every token among `addresses` (To, Cc, Delivered-To of a mail), for any of the
/// mailboxes' `templates`, each once.
pub fn find<'a>(templates: &[String], addresses: impl IntoIterator<Item = &'a str>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    // A set beside the list: thousands of token-like recipients stay linear (issue 12).
    let mut seen = std::collections::HashSet::new();
    for a in addresses {
        for t in templates {
            if let Some(token) = parse(t, a) {
                if seen.insert(token.clone()) {
                    out.push(token);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> InstanceKey {
        InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn addresses_round_trip_in_any_case() {
        let key = key();
        let template = default_reply_address("Support@Example.test");
        assert_eq!(template, "support+{token}@example.test");
        let a = address(&template, &key, TicketId::new(42), "Bob");
        assert!(a.starts_with("support+r-42-bob-"), "{a}");
        assert!(a.len() < 64, "short enough for any server: {a}");
        for written in [a.clone(), a.to_uppercase()] {
            let t = parse(&template, &written).expect("a token");
            assert_eq!((t.ticket, t.agent.as_str()), (TicketId::new(42), "bob"));
            assert!(t.verify(&key));
        }
        // Names with '-' and '.' survive: the ticket is first, the mac last.
        let a = address(&template, &key, TicketId::new(7), "li-wei.zhang");
        let t = parse(&template, &a).unwrap();
        assert_eq!(t.agent, "li-wei.zhang");
        assert!(t.verify(&key));
    }

    #[test]
    fn altered_tokens_do_not_verify() {
        let key = key();
        let template = default_reply_address("support@example.test");
        let a = address(&template, &key, TicketId::new(42), "bob");
        let other_ticket = a.replace("r-42-", "r-43-");
        assert!(!parse(&template, &other_ticket).unwrap().verify(&key));
        let other_agent = a.replace("-bob-", "-alice-");
        assert!(!parse(&template, &other_agent).unwrap().verify(&key));
        let (head, tail) = a.split_once('@').unwrap();
        let mut flipped = head.as_bytes().to_vec();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = format!("{}@{tail}", String::from_utf8(flipped).unwrap());
        assert!(!parse(&template, &flipped).unwrap().verify(&key));
    }

    #[test]
    fn other_addresses_are_no_tokens() {
        let template = default_reply_address("support@example.test");
        for a in [
            "support@example.test",
            "support+comment@example.test",
            "support+csat-42-5-0123456789ab@example.test",
            "support+r-42-bob-0123456789abcdef@other.test",
            "other+r-42-bob-0123456789abcdef@example.test",
            "support+r-x-bob-0123456789abcdef@example.test",
            "support+r-0-bob-0123456789abcdef@example.test",
            "support+r-42--0123456789abcdef@example.test",
            "support+r-42-bob-xyz@example.test",
            "support+r-42-b\u{f6}b-0123456789abcdef@example.test",
        ] {
            assert_eq!(parse(&template, a), None, "{a}");
        }
        // A template without plus-addressing.
        let custom = "reply-{token}@replies.example.test";
        let a = address(custom, &key(), TicketId::new(5), "alice");
        assert!(a.starts_with("reply-r-5-alice-") && a.ends_with("@replies.example.test"));
        let found = find(
            &[template, custom.to_owned()],
            ["carol@customer.test", a.as_str(), a.as_str()],
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].verify(&key()));
    }
}
