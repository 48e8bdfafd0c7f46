//! The instance key and every HMAC made with it.
//!
//! In: the key file at `data_dir/instance.key` (created on first use: 32 random bytes as
//! hex, mode 0600), or bytes given by a test. Out: signed values and their checks.
//! - Our Message-IDs are `<{ticket}.{message}.{mac}@{hostname}>`, the mac 64 bits of
//!   HMAC-SHA256 over ticket and message ids; [`InstanceKey::verify`] gives back the ticket
//!   only when the mac is right (DESIGN.md "Subject tag and addresses").
//! - Survey links carry a 48-bit mac over ticket and rating ([`InstanceKey::survey_mac`]).
//! - Agents' reply tokens carry a 64-bit mac over ticket and agent name
//!   ([`InstanceKey::reply_mac`]); `agent::token` writes and reads the address.
//! - Macs are compared in constant time; `Debug` never shows the key (invariant 7).
//! - The only module that creates the key file; nothing else here touches the disk.

use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::{MessageId, MessageRowId, TicketId};

/// Hex digits of the HMAC kept in a Message-ID: 64 bits, far beyond guessing by mail.
const MAC_HEX_LEN: usize = 16;
/// Hex digits of a reply token's mac: 64 bits, like our Message-IDs (a token lets an
/// agent's reply act on a ticket).
const REPLY_MAC_HEX_LEN: usize = 16;
/// Hex digits of a survey link's mac: 48 bits; a guess costs a mail and changes one rating.
const SURVEY_MAC_HEX_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read instance key {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create instance key {path}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("instance key {path} is too short (at least 32 bytes of hex or text)")]
    TooShort { path: String },
}

/// The instance secret that signs our Message-IDs. `Debug` never shows it.
#[derive(Clone)]
pub struct InstanceKey(Vec<u8>);

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceKey(..)")
    }
}

impl InstanceKey {
    pub fn from_bytes(bytes: &[u8]) -> InstanceKey {
        InstanceKey(bytes.to_vec())
    }

    /// Reads the key at `path`, or creates it (32 random bytes as hex, mode 0600) when it
    /// does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<InstanceKey, KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = text.trim();
                if text.len() < 32 {
                    return Err(KeyError::TooShort { path: shown });
                }
                Ok(InstanceKey(text.as_bytes().to_vec()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
                let text = hex::encode(bytes);
                let create = || -> std::io::Result<()> {
                    use std::os::unix::fs::OpenOptionsExt;
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        // The data directory, when the key is made first: 0700.
                        use std::os::unix::fs::DirBuilderExt;
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(dir)?;
                    }
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)?;
                    f.write_all(text.as_bytes())?;
                    f.write_all(b"\n")?;
                    f.sync_all()
                };
                match create() {
                    Ok(()) => Ok(InstanceKey(text.into_bytes())),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        InstanceKey::load_or_create(path)
                    }
                    Err(source) => Err(KeyError::Create {
                        path: shown,
                        source,
                    }),
                }
            }
            Err(source) => Err(KeyError::Read {
                path: shown,
                source,
            }),
        }
    }

    /// Hex of HMAC-SHA256(key, `text`), cut to `len` digits.
    fn hmac_hex(&self, text: &str, len: usize) -> String {
        // Invariant: HMAC takes a key of any length, so `new_from_slice` cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(text.as_bytes());
        let mut out = hex::encode(mac.finalize().into_bytes());
        out.truncate(len);
        out
    }

    fn mac(&self, ticket: TicketId, message: MessageRowId) -> String {
        self.hmac_hex(&format!("{}.{}", ticket.get(), message.get()), MAC_HEX_LEN)
    }

    /// The mac of a survey link for (ticket, rating): 48 bits, in a plus-address.
    pub fn survey_mac(&self, ticket: TicketId, rating: u8) -> String {
        self.hmac_hex(
            &format!("csat.{}.{rating}", ticket.get()),
            SURVEY_MAC_HEX_LEN,
        )
    }

    /// True when `mac` (as written, any case) is the survey mac of (ticket, rating).
    pub fn verify_survey(&self, ticket: TicketId, rating: u8, mac: &str) -> bool {
        same_hex(&self.survey_mac(ticket, rating), mac)
    }

    /// The mac of agent `agent`'s reply token for `ticket`: 64 bits, lower-case hex.
    pub fn reply_mac(&self, ticket: TicketId, agent: &str) -> String {
        self.hmac_hex(
            &format!("reply.{}.{}", ticket.get(), agent.to_ascii_lowercase()),
            REPLY_MAC_HEX_LEN,
        )
    }

    /// True when `mac` (any case) is the reply mac of (ticket, agent).
    pub fn verify_reply(&self, ticket: TicketId, agent: &str, mac: &str) -> bool {
        same_hex(&self.reply_mac(ticket, agent), mac)
    }

    /// Our Message-ID for outgoing message `message` on `ticket`.
    pub fn message_id(&self, hostname: &str, ticket: TicketId, message: MessageRowId) -> MessageId {
        MessageId::new(&format!(
            "{}.{}.{}@{hostname}",
            ticket.get(),
            message.get(),
            self.mac(ticket, message)
        ))
    }

    /// The ticket and message a Message-ID of ours names, when its mac is right. The
    /// domain is not checked, so that renaming the host keeps old threads working.
    pub fn verify(&self, id: &MessageId) -> Option<(TicketId, MessageRowId)> {
        let (local, _domain) = id.as_str().rsplit_once('@')?;
        let mut parts = local.split('.');
        let ticket: i64 = parts.next()?.parse().ok()?;
        let message: i64 = parts.next()?.parse().ok()?;
        let mac = parts.next()?;
        if parts.next().is_some() || ticket <= 0 || message <= 0 {
            return None;
        }
        let (ticket, message) = (TicketId::new(ticket), MessageRowId::new(message));
        same_hex(&self.mac(ticket, message), mac).then_some((ticket, message))
    }
}

/// Constant-time comparison of our lower-case hex with a mac as written: the mac is a
/// secret-derived value, so the time taken must not tell how much of it was right.
fn same_hex(want: &str, got: &str) -> bool {
    want.len() == got.len()
        && want
            .bytes()
            .zip(got.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_ids_round_trip_and_resist_forgery() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let id = key.message_id("h.example.test", TicketId::new(42), MessageRowId::new(7));
        assert!(id.as_str().starts_with("42.7."));
        assert_eq!(
            key.verify(&id),
            Some((TicketId::new(42), MessageRowId::new(7)))
        );
        let forged = MessageId::new(&id.as_str().replacen("42.", "43.", 1));
        assert_eq!(key.verify(&forged), None);
        let other = InstanceKey::from_bytes(b"another key, another key, another");
        assert_eq!(other.verify(&id), None);
        assert_eq!(key.verify(&MessageId::new("garbage")), None);
        assert_eq!(key.verify(&MessageId::new("1.2@x")), None);
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instance.key");
        let a = InstanceKey::load_or_create(&path).unwrap();
        let b = InstanceKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(format!("{a:?}"), "InstanceKey(..)");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Our Message-IDs verify; any change to ticket, message or mac does not.
            #[test]
            fn signed_ids_round_trip(t in 1i64..i64::MAX / 2, m in 1i64..i64::MAX / 2, flip in 0usize..16) {
                let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
                let id = key.message_id("h.example", TicketId::new(t), MessageRowId::new(m));
                prop_assert_eq!(key.verify(&id), Some((TicketId::new(t), MessageRowId::new(m))));
                let (local, _) = id.as_str().rsplit_once('@').unwrap();
                let mac = local.rsplit('.').next().unwrap();
                let mut bad = mac.as_bytes().to_vec();
                bad[flip] = if bad[flip] == b'0' { b'1' } else { b'0' };
                let forged = MessageId::new(&id.as_str().replace(mac, std::str::from_utf8(&bad).unwrap()));
                prop_assert_eq!(key.verify(&forged), None);
                let other = MessageId::new(&format!("{}.{}.{}@h.example", t + 1, m, mac));
                prop_assert_eq!(key.verify(&other), None);
            }
        }
    }

    #[test]
    fn reply_macs_bind_ticket_and_agent() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let mac = key.reply_mac(TicketId::new(42), "bob");
        assert_eq!(mac.len(), REPLY_MAC_HEX_LEN);
        assert!(key.verify_reply(TicketId::new(42), "bob", &mac));
        assert!(key.verify_reply(TicketId::new(42), "BOB", &mac.to_uppercase()));
        assert!(!key.verify_reply(TicketId::new(42), "alice", &mac));
        assert!(!key.verify_reply(TicketId::new(43), "bob", &mac));
        assert_ne!(mac, key.survey_mac(TicketId::new(42), 1));
    }

    #[test]
    fn survey_macs_bind_ticket_and_rating() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let mac = key.survey_mac(TicketId::new(42), 4);
        assert_eq!(mac.len(), SURVEY_MAC_HEX_LEN);
        assert!(key.verify_survey(TicketId::new(42), 4, &mac));
        assert!(key.verify_survey(TicketId::new(42), 4, &mac.to_uppercase()));
        assert!(!key.verify_survey(TicketId::new(42), 5, &mac));
        assert!(!key.verify_survey(TicketId::new(43), 4, &mac));
        assert!(!key.verify_survey(TicketId::new(42), 4, &mac[..11]));
    }
}
