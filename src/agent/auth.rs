//! Proof that an agent's mail comes from the agent (DESIGN.md invariant 5).
//!
//! In: the message's `Authentication-Results` values, topmost first, the authserv-id we
//! trust and the agent's address. Out: `Ok(how)` or `Err(why not)`. Pure.
//! - Only the topmost header carrying the trusted authserv-id counts: our receiving
//!   server adds its header on top, and anything below it came with the message and can
//!   be forged by the sender (RFC 8601 section 5).
//! - It must show `dkim=pass` with `header.d` aligned with the agent's domain, or
//!   `dmarc=pass` with `header.from` aligned (relaxed alignment: the same domain, or one
//!   a subdomain of the other).

/// Checks `auth_results` for `address`; see the module doc.
pub fn verify(auth_results: &[String], trusted: &str, address: &str) -> Result<String, String> {
    let domain = address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase();
    let Some(header) = auth_results
        .iter()
        .find(|h| authserv_id(h).eq_ignore_ascii_case(trusted))
    else {
        return Err(format!("no Authentication-Results header from {trusted}"));
    };
    let mut seen = Vec::new();
    for result in header.split(';').skip(1) {
        let mut words = result.split_whitespace();
        let Some((method, outcome)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let method = method.to_ascii_lowercase();
        let outcome = outcome.to_ascii_lowercase();
        let props: Vec<(String, String)> = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.trim_matches(['"', '(', ')']).to_ascii_lowercase(),
                )
            })
            .collect();
        let prop = |name: &str| {
            props
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let aligned_with = match method.as_str() {
            "dkim" => prop("header.d"),
            "dmarc" => prop("header.from"),
            _ => continue,
        };
        if outcome == "pass" {
            match aligned_with {
                Some(d) if aligned(d, &domain) => {
                    return Ok(format!("{method}=pass for {d} ({trusted})"))
                }
                Some(d) => seen.push(format!("{method}=pass for {d}, not {domain}")),
                None => seen.push(format!("{method}=pass without a domain")),
            }
        } else {
            seen.push(format!("{method}={outcome}"));
        }
    }
    if seen.is_empty() {
        Err(format!("{trusted} reports no DKIM or DMARC result"))
    } else {
        Err(format!("{trusted} reports {}", seen.join(", ")))
    }
}

/// The authserv-id: the first word before the first `;` (a version number may follow).
fn authserv_id(header: &str) -> &str {
    header
        .split(';')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
}

fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    !a.is_empty() && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// STUB until the RFC 8601 parser lands (branch authres).
pub struct Trust<'a> {
    pub authserv_id: &'a str,
    pub internal_hosts: &'a [String],
}

/// STUB.
pub fn agent_proof(headers: &[String], trust: &Trust, address: &str) -> Result<String, String> {
    verify(headers, trust.authserv_id, address)
}

/// STUB.
pub fn domain_failed(_headers: &[String], _trust: &Trust, _address: &str) -> Option<String> {
    None
}

/// STUB.
pub fn trusted(_headers: &[String], _trust: &Trust) -> (Vec<String>, Vec<String>) {
    (Vec::new(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(headers: &[&str]) -> Result<String, String> {
        let h: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
        verify(&h, "mx.example.test", "alice@example.test")
    }

    #[test]
    fn table() {
        assert!(check(&["mx.example.test; dkim=pass header.d=example.test header.s=s1"]).is_ok());
        assert!(check(&[
            "mx.example.test 1; spf=pass; dmarc=pass (p=none) header.from=example.test"
        ])
        .is_ok());
        assert!(
            check(&["mx.example.test; dkim=pass header.d=mail.example.test"]).is_ok(),
            "subdomain aligns"
        );
        let err = check(&["mx.example.test; dkim=fail header.d=example.test"]).unwrap_err();
        assert!(err.contains("dkim=fail"), "{err}");
        let err = check(&["mx.example.test; dkim=pass header.d=evil.test"]).unwrap_err();
        assert!(err.contains("not example.test"), "{err}");
        let err = check(&[]).unwrap_err();
        assert!(
            err.contains("no Authentication-Results header from mx.example.test"),
            "{err}"
        );
        // A forged header from another authserv-id does not count, wherever it is.
        assert!(check(&["evil.test; dkim=pass header.d=example.test"]).is_err());
        // Only the topmost header of the trusted server counts: a forged one below the
        // real one (added by the sender) is ignored.
        let err = check(&[
            "mx.example.test; dkim=fail header.d=example.test",
            "mx.example.test; dkim=pass header.d=example.test",
        ])
        .unwrap_err();
        assert!(err.contains("dkim=fail"), "{err}");
        assert!(
            check(&["mx.example.test; spf=pass smtp.mailfrom=example.test"]).is_err(),
            "SPF alone is not enough"
        );
    }
}
