//! What our receiving servers' `Authentication-Results` headers prove about a sender
//! (DESIGN.md invariants 4 and 5, issue 10).
//!
//! In: a message's headers ([`AuthHeader`]: value and the `Received` hosts above it), the
//! [`Trust`] (our authserv-id, the hosts whose `Received` lines are ours) and the
//! sender's address. Out: which headers are trusted, whether an agent is proven, whether
//! a customer's domain failed. Pure; the values are read with [`crate::mail::authres`].
//! - A header counts only when it carries our authserv-id AND every `Received` line above
//!   it was written by an internal host: our servers add theirs on top, and anything
//!   below a line written elsewhere came with the message, so the sender could have
//!   written it (RFC 8601 section 5). Such a header is a forgery, reported, never read.
//!   An empty authserv-id or host in the configuration matches nothing.
//! - The sender can write a `Received` line naming any host, so `internal_hosts` should
//!   name only hosts that handle the message after our verifier added its header (the
//!   IMAP server's LMTP, an internal relay). Listing the verifying MX itself trusts a
//!   header the sender put under a forged `Received: … by <mx>` line, unless the MX
//!   strips incoming headers with its own authserv-id (RFC 8601 section 5; it should).
//! - Agent proof: a trusted `dkim=pass` whose `header.d` (else `header.i`) is aligned with
//!   the agent's domain, or `dmarc=pass` with `header.from` aligned, and no trusted
//!   aligned DKIM or DMARC result other than `pass` (a `fail`, `temperror`, `neutral`…
//!   is a failure whatever else the headers say; for that, a DKIM result is aligned
//!   when `header.d` OR `header.i` is). A trusted header that cannot be read refuses:
//!   it might hold a failure.
//! - Customer check: a trusted aligned `dmarc=fail`, or an aligned `dkim=fail` (signer:
//!   `header.d`, else `header.i`) with no aligned `dkim=pass`. Unreadable headers and
//!   other results say nothing about a customer.
//! - Relaxed alignment: the same domain, or one a subdomain of the other; case and a
//!   trailing dot ignored; a domain without a dot (`com`) aligns with nothing (without a
//!   public-suffix list this keeps a top-level domain from covering everyone).

use crate::mail::authres::{self, AuthResError, AuthResults, MethodResult};
use crate::mail::parse::AuthHeader;

/// Whose `Authentication-Results` headers we believe.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// The authserv-id our verifying MX writes (`trusted_authserv_id`).
    pub authserv_id: &'a str,
    /// Hosts whose `Received` lines may sit above a trusted header (our MX itself, the
    /// IMAP server's LMTP): the `by` names they write.
    pub internal_hosts: &'a [String],
}

/// The trusted headers: those with our authserv-id whose every Received line above is
/// written by an internal host (internal_hosts, compared case-insensitively). Headers
/// with our id below any other Received line are returned as forgeries (a short
/// description each). A trusted header that cannot be read is in neither list.
pub fn trusted(headers: &[AuthHeader], trust: &Trust) -> (Vec<AuthResults>, Vec<String>) {
    let sorted = sort(headers, trust);
    (sorted.trusted, sorted.forged)
}

/// Agent proof: Ok(how) only when a trusted header shows dkim=pass with header.d aligned
/// with the domain of `address`, or dmarc=pass with header.from aligned, AND no trusted
/// header shows an aligned dkim or dmarc result other than pass. Err(why) otherwise,
/// naming what was seen.
pub fn agent_proof(headers: &[AuthHeader], trust: &Trust, address: &str) -> Result<String, String> {
    let id = trust.authserv_id.trim();
    let domain = address_domain(address);
    if domain.is_empty() {
        return Err(format!("no domain in the sender address {address:?}"));
    }
    let sorted = sort(headers, trust);
    if let Some(err) = sorted.unreadable.first() {
        return Err(format!(
            "cannot read the Authentication-Results header from {id}: {err}"
        ));
    }
    if sorted.trusted.is_empty() {
        return Err(match sorted.forged.len() {
            0 => format!("no Authentication-Results header from {id}"),
            n => {
                let mut shown = sorted.forged[..n.min(3)].join("; ");
                if n > 3 {
                    shown.push_str(&format!("; and {} more", n - 3));
                }
                format!(
                    "no Authentication-Results header from {id} above the Received lines of \
                     other hosts; ignored {n} below them: {shown}"
                )
            }
        });
    }
    let results = || sorted.trusted.iter().flat_map(|h| &h.results);
    let failures: Vec<String> = results()
        .filter(|r| r.result != "pass" && failure_aligned(r, &domain))
        .map(describe)
        .collect();
    if !failures.is_empty() {
        return Err(format!("{id} reports {} for {domain}", failures.join(", ")));
    }
    if let Some(r) = results().find(|r| r.result == "pass" && pass_aligned(r, &domain)) {
        return Ok(format!("{} ({id})", describe(r)));
    }
    let seen: Vec<String> = results().map(describe).collect();
    Err(if seen.is_empty() {
        format!("{id} reports no results")
    } else {
        format!(
            "{id} reports no dkim or dmarc pass for {domain}: {}",
            seen.join(", ")
        )
    })
}

/// Customer check: Some(why) when a trusted header shows dmarc=fail aligned with the
/// sender's domain, or dkim=fail aligned with no aligned dkim=pass.
pub fn domain_failed(headers: &[AuthHeader], trust: &Trust, address: &str) -> Option<String> {
    let id = trust.authserv_id.trim();
    let domain = address_domain(address);
    if domain.is_empty() {
        return None;
    }
    let sorted = sort(headers, trust);
    let results: Vec<&MethodResult> = sorted.trusted.iter().flat_map(|h| &h.results).collect();
    let signed_for =
        |r: &MethodResult| r.method == "dkim" && signer(r).is_some_and(|d| aligned(&d, &domain));
    if let Some(r) = results.iter().find(|r| {
        r.method == "dmarc" && r.result == "fail" && prop_aligned(r, "header.from", &domain)
    }) {
        return Some(format!("{id} reports {} for {domain}", describe(r)));
    }
    let dkim_pass = results.iter().any(|r| r.result == "pass" && signed_for(r));
    match results.iter().find(|r| r.result == "fail" && signed_for(r)) {
        Some(r) if !dkim_pass => Some(format!(
            "{id} reports {} for {domain} and no dkim=pass",
            describe(r)
        )),
        _ => None,
    }
}

/// The agent check with our MX as the only trusted writer and no internal hosts: a
/// trusted header must sit above every `Received` line. Kept for `workflow::agents`.
pub fn verify(auth_results: &[AuthHeader], trusted: &str, address: &str) -> Result<String, String> {
    agent_proof(
        auth_results,
        &Trust {
            authserv_id: trusted,
            internal_hosts: &[],
        },
        address,
    )
}

/// The headers of one message, sorted by whose they are.
struct Sorted {
    /// Ours, in order.
    trusted: Vec<AuthResults>,
    /// Ours by position but unreadable.
    unreadable: Vec<AuthResError>,
    /// With our id, below a Received line of another host.
    forged: Vec<String>,
}

fn sort(headers: &[AuthHeader], trust: &Trust) -> Sorted {
    let mut sorted = Sorted {
        trusted: Vec::new(),
        unreadable: Vec::new(),
        forged: Vec::new(),
    };
    let ours = trust.authserv_id.trim().to_ascii_lowercase();
    if ours.is_empty() {
        return sorted;
    }
    let internal: Vec<&str> = trust
        .internal_hosts
        .iter()
        .map(|h| h.trim().trim_end_matches('.'))
        .filter(|h| !h.is_empty())
        .collect();
    let is_internal = |by: &str| {
        internal
            .iter()
            .any(|h| h.eq_ignore_ascii_case(by.trim_end_matches('.')))
    };
    for header in headers {
        let parsed = authres::parse(&header.value);
        let id = match &parsed {
            Ok(h) => h.authserv_id.clone(),
            Err(_) => authres::authserv_id(&header.value).unwrap_or_default(),
        };
        if id != ours {
            continue;
        }
        match (
            header.received_above.iter().find(|by| !is_internal(by)),
            parsed,
        ) {
            (None, Ok(h)) => sorted.trusted.push(h),
            (None, Err(e)) => sorted.unreadable.push(e),
            (Some(by), parsed) => sorted.forged.push(forgery(&ours, by, parsed)),
        }
    }
    sorted
}

/// A forged header in a line: where it sat and what it claimed.
fn forgery(id: &str, by: &str, parsed: Result<AuthResults, AuthResError>) -> String {
    let below = if by.is_empty() {
        "a Received line naming no host".to_owned()
    } else {
        format!("a Received line by {by}")
    };
    let claims = match parsed {
        Ok(h) if h.results.is_empty() => "none".to_owned(),
        Ok(h) => h
            .results
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("unreadable: {e}"),
    };
    let mut line = format!("{id} header below {below} ({claims})");
    if line.len() > 300 {
        let cut = (0..=297)
            .rev()
            .find(|i| line.is_char_boundary(*i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

/// `dkim=pass header.d=example.test`: the result and the domain it is about.
fn describe(r: &MethodResult) -> String {
    let about = ["header.d", "header.i", "header.from", "smtp.mailfrom"]
        .into_iter()
        .find_map(|name| r.prop(name).map(|v| format!(" {name}={v}")))
        .unwrap_or_default();
    format!("{}={}{about}", r.method, r.result)
}

/// The DKIM signer: `header.d`, else the domain of `header.i`.
fn signer(r: &MethodResult) -> Option<String> {
    r.prop("header.d")
        .or_else(|| r.prop("header.i"))
        .map(domain_of)
}

/// A pass that proves `domain`: DKIM by its signer, DMARC by `header.from`.
fn pass_aligned(r: &MethodResult, domain: &str) -> bool {
    match r.method.as_str() {
        "dkim" => signer(r).is_some_and(|d| aligned(&d, domain)),
        "dmarc" => prop_aligned(r, "header.from", domain),
        _ => false,
    }
}

/// A result that, not being a pass, refuses `domain`: DKIM by `header.d` or `header.i`,
/// DMARC by `header.from`.
fn failure_aligned(r: &MethodResult, domain: &str) -> bool {
    match r.method.as_str() {
        "dkim" => prop_aligned(r, "header.d", domain) || prop_aligned(r, "header.i", domain),
        "dmarc" => prop_aligned(r, "header.from", domain),
        _ => false,
    }
}

fn prop_aligned(r: &MethodResult, name: &str, domain: &str) -> bool {
    r.prop(name).is_some_and(|v| aligned(&domain_of(v), domain))
}

/// The domain of `user@domain`, `@domain`, `<user@domain>` or `domain`: lower case,
/// without a trailing dot.
fn domain_of(value: &str) -> String {
    let v = value.trim().trim_start_matches('<').trim_end_matches('>');
    let d = v.rsplit_once('@').map_or(v, |(_, d)| d);
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The domain of a sender's `local@domain`; "" without an `@`.
fn address_domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or_else(String::new, |_| domain_of(address))
}

/// Relaxed alignment of two domains from [`domain_of`]; see the module doc.
fn aligned(a: &str, b: &str) -> bool {
    let subdomain = |long: &str, short: &str| {
        long.strip_suffix(short)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
    };
    a.contains('.') && b.contains('.') && (a == b || subdomain(a, b) || subdomain(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "mx.example.org";
    const AGENT: &str = "alice@example.test";

    fn internal() -> Vec<String> {
        vec!["mx.example.org".to_owned(), "IMAP.example.org.".to_owned()]
    }

    fn headers(hs: &[(&str, &[&str])]) -> Vec<AuthHeader> {
        hs.iter()
            .map(|(value, above)| AuthHeader {
                value: (*value).to_owned(),
                received_above: above.iter().map(|s| (*s).to_owned()).collect(),
            })
            .collect()
    }

    /// `Ok(part of how)` / `Err(part of why)` for the agent; `Some(part of why)` when the
    /// domain failed.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static [&'static str])],
        Result<&'static str, &'static str>,
        Option<&'static str>,
    );

    const IMAP: &[&str] = &["imap.example.org"];
    const NONE: &[&str] = &[];

    /// Policy over real-world-shaped headers, as our MX (`mx.example.org`, with the IMAP
    /// server's LMTP Received line on top) would hand them over. Address: alice@example.test.
    const CASES: &[Case] = &[
        (
            "opendkim pass, aligned",
            &[("mx.example.org; dkim=pass (2048-bit key; unprotected) header.d=example.test header.i=@example.test header.a=rsa-sha256 header.s=mail header.b=Xm3pQ7rZ", IMAP)],
            Ok("dkim=pass header.d=example.test (mx.example.org)"),
            None,
        ),
        (
            "opendmarc pass, aligned",
            &[("mx.example.org; dmarc=pass (p=quarantine dis=none) header.from=example.test", IMAP)],
            Ok("dmarc=pass header.from=example.test"),
            None,
        ),
        (
            "opendmarc fail",
            &[("mx.example.org; dmarc=fail (p=reject dis=none) header.from=example.test", IMAP)],
            Err("mx.example.org reports dmarc=fail header.from=example.test for example.test"),
            Some("dmarc=fail header.from=example.test"),
        ),
        (
            "opendkim + opendmarc: dkim pass, dmarc fail in a second trusted header",
            &[
                ("mx.example.org; dmarc=fail (p=reject dis=none) header.from=example.test", IMAP),
                ("mx.example.org; dkim=pass (1024-bit key; secure) header.d=example.test header.s=k", IMAP),
            ],
            Err("dmarc=fail"),
            Some("dmarc=fail"),
        ),
        (
            "rspamd pass",
            &[("mx.example.org; dkim=pass header.d=example.test header.s=dkim header.b=Rr4; spf=pass (mx.example.org: domain of bounce@example.test designates 192.0.2.20 as permitted sender) smtp.mailfrom=bounce@example.test; dmarc=pass (policy=reject) header.from=example.test", IMAP)],
            Ok("dkim=pass header.d=example.test"),
            None,
        ),
        (
            "rspamd dmarc fail with a quoted reason",
            &[("mx.example.org; dkim=none; spf=fail (mx.example.org: domain of \"x@example.test\" does not designate 203.0.113.66 as permitted sender) smtp.mailfrom=\"x@example.test\"; dmarc=fail reason=\"SPF not aligned (relaxed), No valid DKIM\" header.from=example.test (policy=reject)", IMAP)],
            Err("dmarc=fail"),
            Some("dmarc=fail"),
        ),
        (
            "stalwart pass, dmarc header.from and policy.dmarc",
            &[("mx.example.org; dkim=pass header.d=example.test header.s=202401e header.b=Hh7; spf=pass smtp.mailfrom=alice@example.test; dmarc=pass header.from=example.test policy.dmarc=reject", IMAP)],
            Ok("dkim=pass"),
            None,
        ),
        (
            "the attack inside our own header",
            &[("mx.example.org; spf=pass smtp.mailfrom=\"a;dkim=pass header.d=example.test\"@evil.test", IMAP)],
            Err("no dkim or dmarc pass for example.test: spf=pass smtp.mailfrom=\"a;dkim=pass header.d=example.test\"@evil.test"),
            None,
        ),
        (
            "the attack in our spf comment: a quoted local part with parens",
            &[("mx.example.org; spf=pass (mx.example.org: domain of \"a) ; dkim=pass header.d=example.test (x\"@evil.test designates 192.0.2.1 as permitted sender) smtp.mailfrom=\"a) ; dkim=pass header.d=example.test (x\"@evil.test", IMAP)],
            Err("no dkim or dmarc pass for example.test: spf=pass smtp.mailfrom="),
            None,
        ),
        (
            "a result in a comment is not a result",
            &[("mx.example.org; spf=pass (dkim=pass header.d=example.test; dmarc=pass header.from=example.test) smtp.mailfrom=evil.test", IMAP)],
            Err("no dkim or dmarc pass"),
            None,
        ),
        (
            "dkim=fail then dkim=pass for the same domain",
            &[("mx.example.org; dkim=fail (bad signature) header.d=example.test header.s=a; dkim=pass header.d=example.test header.s=b", IMAP)],
            Err("dkim=fail header.d=example.test for example.test"),
            None,
        ),
        (
            "dkim=pass then dkim=temperror, aligned by header.i only",
            &[("mx.example.org; dkim=pass header.d=example.test; dkim=temperror (key query timeout) header.i=@mail.example.test", IMAP)],
            Err("dkim=temperror header.i=@mail.example.test"),
            None,
        ),
        (
            "dmarc=pass with an aligned dkim=neutral",
            &[("mx.example.org; dkim=neutral (no key) header.d=example.test; dmarc=pass header.from=example.test", IMAP)],
            Err("dkim=neutral"),
            None,
        ),
        (
            "an unaligned fail does not spoil an aligned pass",
            &[("mx.example.org; dkim=fail header.d=list.example.net; dkim=pass header.d=example.test", IMAP)],
            Ok("dkim=pass header.d=example.test"),
            None,
        ),
        (
            "a pass for another domain",
            &[("mx.example.org; dkim=pass header.d=evil.test header.s=s1; dmarc=pass header.from=evil.test", IMAP)],
            Err("no dkim or dmarc pass for example.test: dkim=pass header.d=evil.test, dmarc=pass header.from=evil.test"),
            None,
        ),
        (
            "a subdomain aligns (relaxed)",
            &[("mx.example.org; dkim=pass header.d=mail.example.test", IMAP)],
            Ok("dkim=pass header.d=mail.example.test"),
            None,
        ),
        (
            "a top-level domain aligns with nothing",
            &[("mx.example.org; dkim=pass header.d=test; dmarc=pass header.from=test.", IMAP)],
            Err("no dkim or dmarc pass"),
            None,
        ),
        (
            "a lookalike suffix is not a subdomain",
            &[("mx.example.org; dkim=pass header.d=badexample.test", IMAP)],
            Err("no dkim or dmarc pass"),
            None,
        ),
        (
            "header.i alone names the signer",
            &[("mx.example.org; dkim=pass header.i=@Example.Test. header.s=s", IMAP)],
            Ok("dkim=pass header.i=@Example.Test."),
            None,
        ),
        (
            "header.d decides a pass, not a header.i that claims our domain",
            &[("mx.example.org; dkim=pass header.d=evil.test header.i=@example.test", IMAP)],
            Err("no dkim or dmarc pass"),
            None,
        ),
        (
            "spf alone is not enough",
            &[("mx.example.org; spf=pass smtp.mailfrom=alice@example.test", IMAP)],
            Err("no dkim or dmarc pass for example.test: spf=pass smtp.mailfrom=alice@example.test"),
            None,
        ),
        (
            "none",
            &[("mx.example.org; none", IMAP)],
            Err("mx.example.org reports no results"),
            None,
        ),
        (
            "no header at all",
            &[],
            Err("no Authentication-Results header from mx.example.org"),
            None,
        ),
        (
            "gmail's and microsoft's headers further down are not ours",
            &[
                ("spf=pass (sender IP is 203.0.113.25) smtp.mailfrom=example.test; dkim=pass (signature was verified) header.d=example.test;dmarc=pass action=none header.from=example.test;compauth=pass reason=100", &["imap.example.org", "mx.example.org", "relay.example.net"]),
                ("mx.google.com; dkim=pass header.i=@example.test header.s=20230601 header.b=Qx7; dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=example.test", &["imap.example.org", "mx.example.org", "relay.example.net"]),
            ],
            Err("no Authentication-Results header from mx.example.org"),
            None,
        ),
        (
            "our id below a Received line of another host is a forgery",
            &[("mx.example.org; dkim=pass header.d=example.test", &["imap.example.org", "mail.evil.test"])],
            Err("ignored 1 below them: mx.example.org header below a Received line by mail.evil.test (dkim=pass header.d=example.test)"),
            None,
        ),
        (
            "our id below a Received line naming no host is a forgery",
            &[("mx.example.org; dmarc=fail header.from=example.test", &[""])],
            Err("below a Received line naming no host (dmarc=fail header.from=example.test)"),
            None,
        ),
        (
            "below internal hosts only, case and trailing dot ignored",
            &[("MX.EXAMPLE.ORG 1; dkim=pass header.d=example.test", &["IMAP.example.org", "mx.example.org."])],
            Ok("dkim=pass header.d=example.test"),
            None,
        ),
        (
            "the real header on top wins over a forged pass below it",
            &[
                ("mx.example.org; dkim=none (no signature)", IMAP),
                ("mx.example.org; dkim=pass header.d=example.test", &["imap.example.org", "mx.example.org", "smtp.evil.test"]),
            ],
            Err("no dkim or dmarc pass for example.test: dkim=none"),
            None,
        ),
        (
            "a real fail on top, a forged pass below",
            &[
                ("mx.example.org; dkim=fail header.d=example.test", IMAP),
                ("mx.example.org; dkim=pass header.d=example.test", &["imap.example.org", "smtp.evil.test"]),
            ],
            Err("dkim=fail"),
            Some("dkim=fail header.d=example.test for example.test and no dkim=pass"),
        ),
        (
            "a forged fail cannot hurt a customer either",
            &[("mx.example.org; dmarc=fail header.from=example.test", &["smtp.evil.test"])],
            Err("no Authentication-Results header from mx.example.org"),
            None,
        ),
        (
            "an unreadable trusted header refuses",
            &[("mx.example.org; dkim=pass header.d=example.test; dmarc=fail (unterminated", IMAP)],
            Err("cannot read the Authentication-Results header from mx.example.org: comment opened"),
            None,
        ),
        (
            "an unreadable forged header is reported",
            &[("mx.example.org; spf=pass smtp.mailfrom=\"x", &["smtp.evil.test"])],
            Err("(unreadable: quoted string opened at byte 39 is not closed)"),
            None,
        ),
        (
            "customer: dkim fail with an aligned pass is no failure",
            &[("mx.example.org; dkim=fail header.d=example.test; dkim=pass header.d=mail.example.test", IMAP)],
            Err("dkim=fail"),
            None,
        ),
        (
            "customer: dmarc fail for another domain is not ours to judge",
            &[("mx.example.org; dmarc=fail header.from=other.test; dkim=fail header.d=other.test", IMAP)],
            Err("no dkim or dmarc pass"),
            None,
        ),
        (
            "customer: dkim=fail signed by header.i",
            &[("mx.example.org; dkim=fail header.i=alice@example.test", IMAP)],
            Err("dkim=fail header.i=alice@example.test"),
            Some("dkim=fail header.i=alice@example.test for example.test and no dkim=pass"),
        ),
        (
            "customer: permerror is no proof of forgery",
            &[("mx.example.org; dkim=permerror header.d=example.test; dmarc=temperror header.from=example.test", IMAP)],
            Err("dkim=permerror header.d=example.test, dmarc=temperror header.from=example.test"),
            None,
        ),
    ];

    #[test]
    fn policy_table() {
        let hosts = internal();
        let trust = Trust {
            authserv_id: ID,
            internal_hosts: &hosts,
        };
        for (name, hs, proof, failed) in CASES {
            let hs = headers(hs);
            let got = agent_proof(&hs, &trust, AGENT);
            match (proof, &got) {
                (Ok(want), Ok(how)) | (Err(want), Err(how)) => {
                    assert!(how.contains(want), "{name}: {got:?}, want {want:?}")
                }
                _ => panic!("{name}: {got:?}, want {proof:?}"),
            }
            let got = domain_failed(&hs, &trust, AGENT);
            match (failed, &got) {
                (None, None) => {}
                (Some(want), Some(why)) => {
                    assert!(why.contains(want), "{name}: {why}, want {want:?}")
                }
                _ => panic!("{name}: domain_failed {got:?}, want {failed:?}"),
            }
        }
    }

    #[test]
    fn trusted_sorts_ours_from_forgeries() {
        let hs = headers(&[
            ("mx.example.org; dkim=pass header.d=example.test", IMAP),
            ("other.example; dkim=pass header.d=example.test", IMAP),
            (
                "mx.example.org; dkim=pass header.d=a.test",
                &["imap.example.org", "evil.test"],
            ),
            ("mx.example.org; dkim=pass (", IMAP),
        ]);
        let hosts = internal();
        let (ours, forged) = trusted(
            &hs,
            &Trust {
                authserv_id: "MX.example.org",
                internal_hosts: &hosts,
            },
        );
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].results[0].prop("header.d"), Some("example.test"));
        assert_eq!(
            forged,
            ["mx.example.org header below a Received line by evil.test (dkim=pass header.d=a.test)"]
        );
    }

    #[test]
    fn empty_trust_settings_match_nothing() {
        let ms = headers(&[(
            "spf=pass smtp.mailfrom=example.test; dkim=pass header.d=example.test",
            NONE,
        )]);
        let none = Trust {
            authserv_id: " ",
            internal_hosts: &[],
        };
        assert_eq!(trusted(&ms, &none), (vec![], vec![]));
        let blank = vec![String::new()];
        let hs = headers(&[("mx.example.org; dkim=pass header.d=example.test", &[""])]);
        let trust = Trust {
            authserv_id: ID,
            internal_hosts: &blank,
        };
        assert!(
            agent_proof(&hs, &trust, AGENT).is_err(),
            "an empty internal host matches no line"
        );
    }

    #[test]
    fn verify_trusts_only_headers_above_every_received_line() {
        let top = headers(&[("mx.example.org; dkim=pass header.d=example.test", NONE)]);
        assert!(verify(&top, ID, AGENT).is_ok());
        let below = headers(&[(
            "mx.example.org; dkim=pass header.d=example.test",
            &["mx.example.org"],
        )]);
        let err = verify(&below, ID, AGENT).unwrap_err();
        assert!(err.contains("ignored 1"), "{err}");
        assert!(verify(&top, ID, "no-domain")
            .unwrap_err()
            .contains("no domain"));
    }

    #[test]
    fn many_forgeries_are_counted_not_listed() {
        let forged: Vec<(&str, &[&str])> = vec![
            (
                "mx.example.org; dkim=pass header.d=example.test",
                &["evil.test"]
            );
            10
        ];
        let err = verify(&headers(&forged), ID, AGENT).unwrap_err();
        assert!(
            err.contains("ignored 10 below them") && err.ends_with("; and 7 more"),
            "{err}"
        );
    }

    #[test]
    fn a_long_forgery_is_cut_short() {
        let value = format!(
            "mx.example.org{}",
            "; dkim=pass header.d=é.example.test".repeat(40)
        );
        let hs = headers(&[(value.as_str(), &["evil.test"])]);
        let hosts = internal();
        let (_, forged) = trusted(
            &hs,
            &Trust {
                authserv_id: ID,
                internal_hosts: &hosts,
            },
        );
        assert!(
            forged[0].len() <= 300 && forged[0].ends_with("..."),
            "{}",
            forged[0]
        );
    }
}
