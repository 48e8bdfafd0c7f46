//! The SASL initial responses that carry a bearer token (the text before base64).
//!
//! - `XOAUTH2` (Google, Microsoft): `user=U ^A auth=Bearer T ^A ^A`.
//! - `OAUTHBEARER` (RFC 7628 section 3.1): a GS2 header `n,a=U,` then `^A`-separated
//!   `host=`, `port=` and `auth=Bearer T`, ending in `^A^A`. A `,` or `=` in the user
//!   name is escaped as `=2C` / `=3D` (RFC 5801).

use crate::config::SaslMechanism;

pub fn initial_response(
    mechanism: SaslMechanism,
    user: &str,
    token: &str,
    host: &str,
    port: u16,
) -> String {
    match mechanism {
        SaslMechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
        SaslMechanism::Oauthbearer => {
            let user = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_is_the_google_format() {
        assert_eq!(
            initial_response(SaslMechanism::Xoauth2, "a@b.c", "T0K", "h", 993),
            "user=a@b.c\x01auth=Bearer T0K\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_is_rfc_7628() {
        // RFC 7628 section 4.1's example, with our host and port.
        assert_eq!(
            initial_response(SaslMechanism::Oauthbearer, "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com", 143),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert!(
            initial_response(SaslMechanism::Oauthbearer, "a,b=c", "t", "h", 1)
                .starts_with("n,a=a=2Cb=3Dc,")
        );
    }
}
