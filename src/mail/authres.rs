//! Reads one `Authentication-Results` header value (RFC 8601) into [`AuthResults`].
//!
//! In: the value as text, unfolded, without the field name. Out: `Ok(AuthResults)`, or an
//! [`AuthResError`] that says where reading stopped. Pure; syntax only: whether a header
//! can be believed is `agent::auth`'s business (where it sits, whose authserv-id).
//! - Comments (nested, at most [`MAX_COMMENT_DEPTH`] deep, with quoted-pairs) and quoted
//!   strings (with `\"` escapes) are read whole: a `;`, `=` or `dkim=pass` inside one is
//!   text, never a separator or a result (the `smtp.mailfrom="a;dkim=pass
//!   header.d=example.test"@evil.test` trick). A quoted string inside a comment is read
//!   whole too, unlike RFC 5322 (see `Reader::comment`: servers copy a quoted envelope
//!   sender into their comments). An unterminated comment or quoted string is an error,
//!   never "the rest of the header".
//! - Bounded: a value over [`MAX_LEN`] bytes or with more than [`MAX_RESULTS`] results is
//!   refused; the cost is linear in the input; no input panics (a proptest feeds it junk).
//! - Names (authserv-id, method, result, ptype, property) are lower-cased; values keep
//!   their case. A value that is one quoted string loses its quotes and escapes; a quoted
//!   local part before `@domain` is kept as written (`"a;b"@evil.test`).
//! - Lenient where real servers are sloppy, never where a comment or quoted string could
//!   be misread: upper case, empty results (`; ;`, a trailing `;`), no space around `;`
//!   or before a comment, a header with no authserv-id at all (Microsoft 365 begins with
//!   `spf=…`; its id is then ""), a `/jobid` after the authserv-id (OpenDKIM and
//!   OpenDMARC `AuthservIDWithJobID`; dropped), properties without a ptype (`action=none`,
//!   `x-bits=2048`: ptype ""), `_` in keywords, and `/`, `=`, `+`, `:` inside values
//!   (base64 `header.b`, URIs). Unknown methods and results are kept as written.

/// Longest header value read; real ones are well under 2 KiB.
pub const MAX_LEN: usize = 16 * 1024;
/// Most results (`method=result` items) in one header.
pub const MAX_RESULTS: usize = 100;
/// Deepest nesting of comments, `((…))`.
pub const MAX_COMMENT_DEPTH: usize = 16;

/// One `Authentication-Results` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Lower case; "" when the header names none (Microsoft 365).
    pub authserv_id: String,
    /// `mx.example.org 1; …`.
    pub version: Option<u32>,
    /// In header order; empty for `none`.
    pub results: Vec<MethodResult>,
}

/// `method[/version]=result [reason=…] ptype.property=value …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// Lower case: `dkim`, `spf`, `dmarc`, `arc`, `x-me-sender`…
    pub method: String,
    pub method_version: Option<u32>,
    /// Lower case: `pass`, `fail`, `none`, `temperror`…
    pub result: String,
    /// `reason=` (the first one), unquoted.
    pub reason: Option<String>,
    pub props: Vec<Property>,
}

/// `ptype.property=value`, such as `header.d=example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Lower case; "" for a sloppy `name=value` without a ptype.
    pub ptype: String,
    /// Lower case.
    pub property: String,
    /// As written, a lone quoted string unquoted.
    pub value: String,
}

impl MethodResult {
    /// The first value of `name` (`"header.d"`, or `"action"` for a property without a
    /// ptype), compared case-insensitively.
    pub fn prop(&self, name: &str) -> Option<&str> {
        let (ptype, property) = name.split_once('.').unwrap_or(("", name));
        self.props
            .iter()
            .find(|p| {
                p.ptype.eq_ignore_ascii_case(ptype) && p.property.eq_ignore_ascii_case(property)
            })
            .map(|p| p.value.as_str())
    }
}

/// Why a header value could not be read; `at` is a byte offset into the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthResError {
    #[error("header value of {len} bytes exceeds the limit of {limit} bytes")]
    TooLong { len: usize, limit: usize },
    #[error("more than {limit} results in one header")]
    TooManyResults { limit: usize },
    #[error("comments nested deeper than {limit} at byte {at}")]
    CommentTooDeep { at: usize, limit: usize },
    #[error("comment opened at byte {at} is not closed")]
    UnterminatedComment { at: usize },
    #[error("quoted string opened at byte {at} is not closed")]
    UnterminatedQuote { at: usize },
    #[error("no authserv-id")]
    MissingAuthservId,
    #[error("number at byte {at} is too large")]
    BadNumber { at: usize },
    #[error("expected {expected} at byte {at}, found {found:?}")]
    Unexpected {
        at: usize,
        expected: &'static str,
        /// The next few characters of the input.
        found: String,
    },
}

/// Parses one header value; see the module doc.
pub fn parse(value: &str) -> Result<AuthResults, AuthResError> {
    let mut r = Reader::new(value)?;
    let (authserv_id, version) = r.authserv_id()?;
    let results = r.results(authserv_id.is_none())?;
    Ok(AuthResults {
        authserv_id: authserv_id.unwrap_or_default(),
        version,
        results,
    })
}

/// Reads only the authserv-id (lower case, "" when the header names none): enough to say
/// whose header a value is when its results cannot be read.
pub fn authserv_id(value: &str) -> Result<String, AuthResError> {
    let mut r = Reader::new(value)?;
    Ok(r.authserv_id()?.0.unwrap_or_default())
}

/// A cursor over the value's bytes. Every delimiter is ASCII, so every position it
/// slices at is a char boundary.
struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

fn is_keyword_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Bytes of an unquoted value: anything but white space, controls, `;`, `"` and
/// parentheses (RFC 2045 tokens plus the tspecials that real values carry).
fn is_value_byte(c: u8) -> bool {
    !(c.is_ascii_whitespace() || c.is_ascii_control() || matches!(c, b';' | b'"' | b'(' | b')'))
}

impl<'a> Reader<'a> {
    fn new(s: &'a str) -> Result<Reader<'a>, AuthResError> {
        if s.len() > MAX_LEN {
            return Err(AuthResError::TooLong {
                len: s.len(),
                limit: MAX_LEN,
            });
        }
        Ok(Reader { s, pos: 0 })
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn unexpected(&self, expected: &'static str) -> AuthResError {
        let found: String = self
            .s
            .get(self.pos..)
            .unwrap_or_default()
            .chars()
            .take(20)
            .collect();
        AuthResError::Unexpected {
            at: self.pos,
            expected,
            found,
        }
    }

    fn expect(&mut self, c: u8, expected: &'static str) -> Result<(), AuthResError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    /// Skips white space and comments (CFWS).
    fn cfws(&mut self) -> Result<(), AuthResError> {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() => self.pos += 1,
                Some(b'(') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    /// Skips one comment, nested ones, quoted-pairs and quoted strings inside it.
    ///
    /// RFC 5322 makes a `"` in a comment plain text; we read a quoted string there whole
    /// on purpose. Servers copy the envelope sender into their SPF comment as it came
    /// (`(mx: domain of "a) ; dkim=pass header.d=example.test (x"@evil.test designates
    /// …)`), and that local part is valid RFC 5321: read as ctext, its `)` would close
    /// the comment and its `dkim=pass` would become a result. A valid address always has
    /// balanced quotes; a lone `"` in a comment makes the header unreadable, never misread.
    fn comment(&mut self) -> Result<(), AuthResError> {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let mut depth = 0usize;
        while let Some(&c) = bytes.get(self.pos) {
            self.pos += 1;
            match c {
                // A quoted-pair: the next byte is text, whatever it is (a continuation
                // byte after it is never a delimiter).
                b'\\' => self.pos += 1,
                b'"' => {
                    self.pos -= 1;
                    self.quoted()?;
                }
                b'(' => {
                    depth += 1;
                    if depth > MAX_COMMENT_DEPTH {
                        return Err(AuthResError::CommentTooDeep {
                            at: self.pos - 1,
                            limit: MAX_COMMENT_DEPTH,
                        });
                    }
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        self.pos = self.s.len();
        Err(AuthResError::UnterminatedComment { at: start })
    }

    /// A run of bytes matching `keep`, possibly empty.
    fn run(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        // Both ends sit next to ASCII bytes or the ends of the input: char boundaries.
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn keyword(&mut self) -> Option<&'a str> {
        let k = self.run(is_keyword_byte);
        (!k.is_empty()).then_some(k)
    }

    fn number(&mut self) -> Result<Option<u32>, AuthResError> {
        let at = self.pos;
        let digits = self.run(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return Ok(None);
        }
        digits
            .parse()
            .map(Some)
            .map_err(|_| AuthResError::BadNumber { at })
    }

    /// A quoted string at the cursor, unescaped.
    fn quoted(&mut self) -> Result<String, AuthResError> {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        while let Some(&c) = bytes.get(self.pos) {
            self.pos += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => match bytes.get(self.pos) {
                    Some(&next) => {
                        out.push(next);
                        self.pos += 1;
                    }
                    None => break,
                },
                _ => out.push(c),
            }
        }
        self.pos = self.s.len();
        Err(AuthResError::UnterminatedQuote { at: start })
    }

    /// A value (after `=`, CFWS already skipped): a quoted string, a quoted local part
    /// followed by `@domain`, or an unquoted run (a token, `local@domain`, `@domain`, a
    /// domain). Empty before `;` or the end (a sloppy `smtp.mailfrom=;`).
    fn value(&mut self) -> Result<String, AuthResError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                let content = self.quoted()?;
                if self.peek() == Some(b'@') {
                    self.run(is_value_byte);
                    Ok(self.s.get(start..self.pos).unwrap_or_default().to_owned())
                } else {
                    Ok(content)
                }
            }
            None | Some(b';') => Ok(String::new()),
            Some(c) if is_value_byte(c) => Ok(self.run(is_value_byte).to_owned()),
            Some(_) => Err(self.unexpected("a value")),
        }
    }

    /// `authserv-id [CFWS version]`, or `None` when the header starts with a result.
    fn authserv_id(&mut self) -> Result<(Option<String>, Option<u32>), AuthResError> {
        self.cfws()?;
        if self.starts_with_result() {
            return Ok((None, None));
        }
        let id = match self.peek() {
            Some(b'"') => self.quoted()?,
            _ => self
                .run(|c| is_value_byte(c) && c != b'/' && c != b'=')
                .to_owned(),
        };
        if id.is_empty() {
            return Err(match self.peek() {
                None | Some(b';') => AuthResError::MissingAuthservId,
                _ => self.unexpected("an authserv-id"),
            });
        }
        if self.peek() == Some(b'/') {
            // `mx.example.org/4A1B2C3D`: OpenDKIM's and OpenDMARC's job id.
            self.pos += 1;
            self.run(is_value_byte);
        }
        self.cfws()?;
        let version = self.number()?;
        Ok((Some(id.to_ascii_lowercase()), version))
    }

    /// True when the cursor is at `method[/version] =` rather than an authserv-id; the
    /// cursor does not move. (A comment error here is reported by the read that follows.)
    fn starts_with_result(&mut self) -> bool {
        let start = self.pos;
        let answer = self.method_ahead().unwrap_or(false);
        self.pos = start;
        answer
    }

    fn method_ahead(&mut self) -> Result<bool, AuthResError> {
        if self.keyword().is_none() {
            return Ok(false);
        }
        self.cfws()?;
        if self.peek() == Some(b'/') {
            self.pos += 1;
            self.cfws()?;
            if self.number()?.is_none() {
                return Ok(false);
            }
            self.cfws()?;
        }
        Ok(self.peek() == Some(b'='))
    }

    /// Every result after the authserv-id. `first_bare`: the first result has no `;`
    /// before it (a header without authserv-id).
    fn results(&mut self, first_bare: bool) -> Result<Vec<MethodResult>, AuthResError> {
        let mut results = Vec::new();
        let mut bare = first_bare;
        loop {
            if !bare {
                self.cfws()?;
                match self.peek() {
                    None => return Ok(results),
                    Some(b';') => self.pos += 1,
                    Some(_) => return Err(self.unexpected("`;`")),
                }
            }
            bare = false;
            self.cfws()?;
            if matches!(self.peek(), None | Some(b';')) {
                continue; // an empty result: `a; ; b` or a trailing `;`
            }
            let Some(method) = self.keyword() else {
                return Err(self.unexpected("a method"));
            };
            self.cfws()?;
            let mut method_version = None;
            if self.peek() == Some(b'/') {
                self.pos += 1;
                self.cfws()?;
                method_version = self.number()?;
                if method_version.is_none() {
                    return Err(self.unexpected("a method version"));
                }
                self.cfws()?;
            }
            if method.eq_ignore_ascii_case("none")
                && method_version.is_none()
                && self.peek() != Some(b'=')
            {
                continue; // `none`: no results
            }
            self.expect(b'=', "`=` after the method")?;
            self.cfws()?;
            let Some(result) = self.keyword() else {
                return Err(self.unexpected("a result"));
            };
            if results.len() == MAX_RESULTS {
                return Err(AuthResError::TooManyResults { limit: MAX_RESULTS });
            }
            let mut m = MethodResult {
                method: method.to_ascii_lowercase(),
                method_version,
                result: result.to_ascii_lowercase(),
                reason: None,
                props: Vec::new(),
            };
            self.properties(&mut m)?;
            results.push(m);
        }
    }

    /// `reason=…` and `ptype.property=value` up to the next `;` or the end.
    fn properties(&mut self, m: &mut MethodResult) -> Result<(), AuthResError> {
        loop {
            self.cfws()?;
            if matches!(self.peek(), None | Some(b';')) {
                return Ok(());
            }
            let Some(first) = self.keyword() else {
                return Err(self.unexpected("a property or `;`"));
            };
            self.cfws()?;
            let (ptype, property) = if self.peek() == Some(b'.') {
                self.pos += 1;
                self.cfws()?;
                let Some(property) = self.keyword() else {
                    return Err(self.unexpected("a property name"));
                };
                self.cfws()?;
                (first, property)
            } else {
                ("", first)
            };
            self.expect(b'=', "`=` after the property")?;
            self.cfws()?;
            let value = self.value()?;
            if ptype.is_empty() && property.eq_ignore_ascii_case("reason") && m.reason.is_none() {
                m.reason = Some(value);
            } else {
                m.props.push(Property {
                    ptype: ptype.to_ascii_lowercase(),
                    property: property.to_ascii_lowercase(),
                    value,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per header: `id[ version]; method[/v]=result [reason=…] [ptype.]property=value…; …`,
    /// `-` for a missing id; values with white space, `;` or `"` (or empty) are Debug-quoted.
    fn render(h: &AuthResults) -> String {
        fn v(s: &str) -> String {
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ';') {
                format!("{s:?}")
            } else {
                s.to_owned()
            }
        }
        let mut out = if h.authserv_id.is_empty() {
            "-".to_owned()
        } else {
            h.authserv_id.clone()
        };
        if let Some(n) = h.version {
            out.push_str(&format!(" {n}"));
        }
        for r in &h.results {
            out.push_str("; ");
            out.push_str(&r.method);
            if let Some(n) = r.method_version {
                out.push_str(&format!("/{n}"));
            }
            out.push_str(&format!("={}", r.result));
            if let Some(reason) = &r.reason {
                out.push_str(&format!(" reason={}", v(reason)));
            }
            for p in &r.props {
                let dot = if p.ptype.is_empty() { "" } else { "." };
                out.push_str(&format!(" {}{dot}{}={}", p.ptype, p.property, v(&p.value)));
            }
        }
        out
    }

    /// `Ok(rendering)` or `Err(part of the error text)`.
    type Want = Result<&'static str, &'static str>;

    /// Real-world shapes, written in the style each system emits (the text is ours).
    const TABLE: &[(&str, &str, Want)] = &[
        (
            "gmail: arc comment holds results that must not be read",
            "mx.google.com; dkim=pass header.i=@example.com header.s=20230601 header.b=Qx7/k+Lm; \
             arc=pass (i=1 spf=pass spfdomain=example.com dkim=pass dkdomain=example.com dmarc=pass fromdomain=example.com); \
             spf=pass (google.com: domain of alice@example.com designates 209.85.220.41 as permitted sender) smtp.mailfrom=alice@example.com; \
             dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=example.com",
            Ok("mx.google.com; dkim=pass header.i=@example.com header.s=20230601 header.b=Qx7/k+Lm; arc=pass; \
                spf=pass smtp.mailfrom=alice@example.com; dmarc=pass header.from=example.com"),
        ),
        (
            "gmail: failing sender",
            "mx.google.com; dkim=fail header.i=@example.net header.s=sel1 header.b=ZZ9yQ1ab; \
             spf=softfail (google.com: domain of transitioning bob@example.net does not designate 198.51.100.7 as permitted sender) smtp.mailfrom=bob@example.net; \
             dmarc=fail (p=REJECT sp=REJECT dis=REJECT) header.from=example.net",
            Ok("mx.google.com; dkim=fail header.i=@example.net header.s=sel1 header.b=ZZ9yQ1ab; \
                spf=softfail smtp.mailfrom=bob@example.net; dmarc=fail header.from=example.net"),
        ),
        (
            "gmail: two signatures, quoted envelope sender",
            "mx.google.com; dkim=pass header.i=@example.com header.s=s1 header.b=AAAA1111; \
             dkim=pass header.i=@mail.esp.example header.s=esp header.b=BBBB2222; \
             spf=pass (google.com: domain of bounces+123-abc=example.com@mail.esp.example designates 192.0.2.8 as permitted sender) \
             smtp.mailfrom=\"bounces+123-abc=example.com@mail.esp.example\"; \
             dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=example.com",
            Ok("mx.google.com; dkim=pass header.i=@example.com header.s=s1 header.b=AAAA1111; \
                dkim=pass header.i=@mail.esp.example header.s=esp header.b=BBBB2222; \
                spf=pass smtp.mailfrom=bounces+123-abc=example.com@mail.esp.example; dmarc=pass header.from=example.com"),
        ),
        (
            "microsoft 365: no authserv-id, no space after `;`, action= without ptype",
            "spf=pass (sender IP is 203.0.113.25) smtp.mailfrom=contoso.example; dkim=pass (signature was verified) \
             header.d=contoso.example;dmarc=pass action=none header.from=contoso.example;compauth=pass reason=100",
            Ok("-; spf=pass smtp.mailfrom=contoso.example; dkim=pass header.d=contoso.example; \
                dmarc=pass action=none header.from=contoso.example; compauth=pass reason=100"),
        ),
        (
            "microsoft 365: failing, header.d=none",
            "spf=fail (sender IP is 198.51.100.9) smtp.mailfrom=fabrikam.example; dkim=none (message not signed) \
             header.d=none;dmarc=fail action=oreject header.from=fabrikam.example;compauth=fail reason=000",
            Ok("-; spf=fail smtp.mailfrom=fabrikam.example; dkim=none header.d=none; \
                dmarc=fail action=oreject header.from=fabrikam.example; compauth=fail reason=000"),
        ),
        (
            "microsoft 365: bestguesspass",
            "spf=pass (sender IP is 192.0.2.44) smtp.mailfrom=mail.tailspin.example; dkim=none (message not signed) \
             header.d=none;dmarc=bestguesspass action=none header.from=tailspin.example;compauth=pass reason=109",
            Ok("-; spf=pass smtp.mailfrom=mail.tailspin.example; dkim=none header.d=none; \
                dmarc=bestguesspass action=none header.from=tailspin.example; compauth=pass reason=109"),
        ),
        (
            "microsoft 365: comment glued to the result",
            "spf=pass (sender IP is 209.85.128.1) smtp.mailfrom=gmail.example; dkim=pass (signature was verified) \
             header.d=gmail.example;dmarc=pass(p=none sp=quarantine dis=none) header.from=gmail.example;compauth=pass reason=100",
            Ok("-; spf=pass smtp.mailfrom=gmail.example; dkim=pass header.d=gmail.example; \
                dmarc=pass header.from=gmail.example; compauth=pass reason=100"),
        ),
        (
            "fastmail: version 1, x- methods, two dkim, policy.* and ptype-less properties",
            "mx4.messagingengine.example 1; x-csa=none; x-me-sender=none; \
             x-ptr=pass smtp.helo=mail.example.org policy.ptr=mail.example.org; \
             bimi=skipped (DMARC Policy is not at enforcement); arc=none (no signatures found); \
             dkim=pass (2048-bit rsa key sha256) header.d=example.org header.i=@example.org header.b=Kq2wE9rT header.a=rsa-sha256 header.s=fm2 x-bits=2048; \
             dkim=pass (2048-bit rsa key sha256) header.d=messagingengine.example header.i=@messagingengine.example header.b=Zp0oL3xV header.a=rsa-sha256 header.s=fm3 x-bits=2048; \
             dmarc=pass policy.published-domain-policy=none policy.applied-disposition=none policy.evaluated-disposition=none \
             (p=none,d=none,d.eval=none) policy.policy-from=p header.from=example.org; \
             iprev=pass smtp.remote-ip=192.0.2.10 (mail.example.org); \
             spf=pass smtp.mailfrom=carol@example.org smtp.helo=mail.example.org; x-aligned-from=pass (Address match); \
             x-return-mx=pass header.domain=example.org policy.is_org=yes (MX Records found: mx1.example.org); \
             x-tls=pass smtp.version=TLSv1.3 smtp.cipher=TLS_AES_256_GCM_SHA384 smtp.bits=256/256; x-vs=clean score=-100 state=0",
            Ok("mx4.messagingengine.example 1; x-csa=none; x-me-sender=none; \
                x-ptr=pass smtp.helo=mail.example.org policy.ptr=mail.example.org; bimi=skipped; arc=none; \
                dkim=pass header.d=example.org header.i=@example.org header.b=Kq2wE9rT header.a=rsa-sha256 header.s=fm2 x-bits=2048; \
                dkim=pass header.d=messagingengine.example header.i=@messagingengine.example header.b=Zp0oL3xV header.a=rsa-sha256 header.s=fm3 x-bits=2048; \
                dmarc=pass policy.published-domain-policy=none policy.applied-disposition=none policy.evaluated-disposition=none \
                policy.policy-from=p header.from=example.org; iprev=pass smtp.remote-ip=192.0.2.10; \
                spf=pass smtp.mailfrom=carol@example.org smtp.helo=mail.example.org; x-aligned-from=pass; \
                x-return-mx=pass header.domain=example.org policy.is_org=yes; \
                x-tls=pass smtp.version=TLSv1.3 smtp.cipher=TLS_AES_256_GCM_SHA384 smtp.bits=256/256; x-vs=clean score=-100 state=0"),
        ),
        (
            "fastmail: body altered",
            "mx2.messagingengine.example 1; dkim=fail (body has been altered, 2048-bit rsa key) header.d=example.org \
             header.i=@example.org header.b=Aa1Bb2Cc header.a=rsa-sha256 header.s=fm1 x-bits=2048; \
             dmarc=fail policy.published-domain-policy=reject (p=reject,d=reject,d.eval=reject) header.from=example.org",
            Ok("mx2.messagingengine.example 1; dkim=fail header.d=example.org header.i=@example.org header.b=Aa1Bb2Cc \
                header.a=rsa-sha256 header.s=fm1 x-bits=2048; dmarc=fail policy.published-domain-policy=reject header.from=example.org"),
        ),
        (
            "opendkim: `;` inside the key comment",
            "mx.example.org; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com \
             header.a=rsa-sha256 header.s=mail header.b=Xm3pQ7rZ",
            Ok("mx.example.org; dkim=pass header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=mail header.b=Xm3pQ7rZ"),
        ),
        (
            "opendkim: secure key, dkim-atps",
            "mx.example.org; dkim=pass (1024-bit key; secure) header.d=example.net header.i=@example.net \
             header.a=rsa-sha256 header.s=default header.b=Vv5Nn8Pp; dkim-atps=neutral",
            Ok("mx.example.org; dkim=pass header.d=example.net header.i=@example.net header.a=rsa-sha256 \
                header.s=default header.b=Vv5Nn8Pp; dkim-atps=neutral"),
        ),
        (
            "opendkim: reason= then comment then properties",
            "mx.example.org; dkim=fail reason=\"signature verification failed\" (2048-bit key; unprotected) \
             header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=mail header.b=Xm3pQ7rZ",
            Ok("mx.example.org; dkim=fail reason=\"signature verification failed\" header.d=example.com \
                header.i=@example.com header.a=rsa-sha256 header.s=mail header.b=Xm3pQ7rZ"),
        ),
        (
            "opendkim: AuthservIDWithJobID",
            "mx.example.org/4B3A21F0C7; dkim=pass (2048-bit key; unprotected) header.d=example.com header.s=mail header.b=Xm3p",
            Ok("mx.example.org; dkim=pass header.d=example.com header.s=mail header.b=Xm3p"),
        ),
        (
            "opendmarc: fail",
            "mx.example.org; dmarc=fail (p=reject dis=none) header.from=example.com",
            Ok("mx.example.org; dmarc=fail header.from=example.com"),
        ),
        (
            "opendmarc: job id, none",
            "mx.example.org/9F8E7D6C5B; dmarc=none (p=none dis=none) header.from=example.net",
            Ok("mx.example.org; dmarc=none header.from=example.net"),
        ),
        (
            "opendmarc: pass",
            "mx.example.org; dmarc=pass (p=quarantine dis=none) header.from=example.com",
            Ok("mx.example.org; dmarc=pass header.from=example.com"),
        ),
        (
            "rspamd: pass",
            "mx.example.org; dkim=pass header.d=example.com header.s=dkim header.b=Rr4Ss5Tt; \
             spf=pass (mx.example.org: domain of bounce@example.com designates 192.0.2.20 as permitted sender) smtp.mailfrom=bounce@example.com; \
             dmarc=pass (policy=reject) header.from=example.com",
            Ok("mx.example.org; dkim=pass header.d=example.com header.s=dkim header.b=Rr4Ss5Tt; \
                spf=pass smtp.mailfrom=bounce@example.com; dmarc=pass header.from=example.com"),
        ),
        (
            "rspamd: quotes in a comment are text; reason with parens in quotes",
            "mx.example.org; dkim=none; spf=fail (mx.example.org: domain of \"x@example.com\" does not designate \
             203.0.113.66 as permitted sender) smtp.mailfrom=\"x@example.com\"; \
             dmarc=fail reason=\"SPF not aligned (relaxed), No valid DKIM\" header.from=example.com (policy=reject)",
            Ok("mx.example.org; dkim=none; spf=fail smtp.mailfrom=x@example.com; \
                dmarc=fail reason=\"SPF not aligned (relaxed), No valid DKIM\" header.from=example.com"),
        ),
        (
            "rspamd: arc comment with a quoted string inside",
            "mx.example.org; arc=pass (\"google.com:s=arc-20160816:i=1\"); dkim=pass header.d=example.com header.s=s1 header.b=Qq1; \
             dmarc=pass (policy=none) header.from=example.com",
            Ok("mx.example.org; arc=pass; dkim=pass header.d=example.com header.s=s1 header.b=Qq1; dmarc=pass header.from=example.com"),
        ),
        (
            "stalwart: pass",
            "mx.example.org; dkim=pass header.d=example.com header.s=202401e header.b=Hh7Jj8Kk; \
             spf=pass (mx.example.org: domain of sender@example.com designates 192.0.2.30 as permitted sender) \
             smtp.mailfrom=sender@example.com smtp.helo=mail.example.com; dmarc=pass header.from=example.com policy.dmarc=reject; \
             arc=none; iprev=pass policy.iprev=192.0.2.30",
            Ok("mx.example.org; dkim=pass header.d=example.com header.s=202401e header.b=Hh7Jj8Kk; \
                spf=pass smtp.mailfrom=sender@example.com smtp.helo=mail.example.com; \
                dmarc=pass header.from=example.com policy.dmarc=reject; arc=none; iprev=pass policy.iprev=192.0.2.30"),
        ),
        (
            "stalwart: fail",
            "mx.example.org; dkim=fail (verification failed) header.d=example.com header.s=s header.b=Bb; \
             spf=fail (mx.example.org: domain of sender@example.com is not designated as permitted sender) smtp.mailfrom=sender@example.com; \
             dmarc=fail header.from=example.com policy.dmarc=quarantine",
            Ok("mx.example.org; dkim=fail header.d=example.com header.s=s header.b=Bb; spf=fail smtp.mailfrom=sender@example.com; \
                dmarc=fail header.from=example.com policy.dmarc=quarantine"),
        ),
        (
            "postfix + opendkim-milter, folded and unfolded, header.i with a local part",
            "mail.example.net;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.org\r\n\theader.i=alice@example.org \
             header.a=rsa-sha256 header.s=k1 header.b=Gg3",
            Ok("mail.example.net; dkim=pass header.d=example.org header.i=alice@example.org header.a=rsa-sha256 header.s=k1 header.b=Gg3"),
        ),
        (
            "postfix sasl: auth method",
            "mail.example.net; auth=pass (PLAIN) smtp.auth=alice@example.org",
            Ok("mail.example.net; auth=pass smtp.auth=alice@example.org"),
        ),
        (
            "yahoo-shaped: version, glued comment, trailing `;`",
            "atlas.mail.example 1; dkim=pass header.i=@example.com header.s=s2048; spf=pass smtp.mailfrom=example.com; \
             dmarc=pass(p=REJECT) header.from=example.com;",
            Ok("atlas.mail.example 1; dkim=pass header.i=@example.com header.s=s2048; spf=pass smtp.mailfrom=example.com; \
                dmarc=pass header.from=example.com"),
        ),
        ("none", "mx.example.org; none", Ok("mx.example.org")),
        ("none with a version", "mx.example.org 1; none", Ok("mx.example.org 1")),
        ("only an authserv-id", "mx.example.org", Ok("mx.example.org")),
        (
            "comment with `;`, `=` and nested parens is one comment",
            "mx.example.org; dkim=pass (good (very; dkim=fail header.d=evil.test) signature) header.d=example.com",
            Ok("mx.example.org; dkim=pass header.d=example.com"),
        ),
        (
            "quoted string with `;` is one value",
            "mx.example.org; dkim=pass reason=\"a; dkim=fail header.d=x\" header.d=example.com",
            Ok("mx.example.org; dkim=pass reason=\"a; dkim=fail header.d=x\" header.d=example.com"),
        ),
        (
            "the attack: a quoted local part that looks like a result",
            "mx.example.org; spf=pass smtp.mailfrom=\"a;dkim=pass header.d=example.test\"@evil.test",
            Ok("mx.example.org; spf=pass smtp.mailfrom=\"\\\"a;dkim=pass header.d=example.test\\\"@evil.test\""),
        ),
        (
            "escaped quote inside a quoted string",
            "mx.example.org; spf=pass smtp.mailfrom=\"a\\\";dkim=pass\"@evil.test; dmarc=none",
            Ok("mx.example.org; spf=pass smtp.mailfrom=\"\\\"a\\\\\\\";dkim=pass\\\"@evil.test\"; dmarc=none"),
        ),
        (
            "upper case names, value case kept",
            "MX.Example.ORG; DKIM=Pass Header.D=Example.COM",
            Ok("mx.example.org; dkim=pass header.d=Example.COM"),
        ),
        (
            "method version",
            "mx.example.org 1; dkim/1=pass header.d=example.com",
            Ok("mx.example.org 1; dkim/1=pass header.d=example.com"),
        ),
        (
            "no spaces, trailing `;`",
            "mx.example.org;dkim=pass header.d=example.com;spf=pass smtp.mailfrom=example.com;",
            Ok("mx.example.org; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"),
        ),
        (
            "quoted authserv-id with version",
            "\"mx.example.org\" 2; dkim=pass header.d=example.com",
            Ok("mx.example.org 2; dkim=pass header.d=example.com"),
        ),
        (
            "comments everywhere CFWS may be",
            "(a) mx.example.org (b) 1 (c) ; (d) dkim (e) / (f) 1 (g) = (h) pass (i) header (j) . (k) d (l) = (m) example.com (n)",
            Ok("mx.example.org 1; dkim/1=pass header.d=example.com"),
        ),
        (
            "quoted-pair in a comment: an escaped `)` does not close it",
            "mx.example.org; dkim=pass (escaped \\) paren; dmarc=fail) header.d=example.com",
            Ok("mx.example.org; dkim=pass header.d=example.com"),
        ),
        (
            "a lone `\"` in a comment is refused, not read past",
            "mx.example.org; dkim=pass (it's \"quoted; dkim=fail) header.d=example.com; dmarc=pass header.from=example.com",
            Err("quoted string opened at byte 32 is not closed"),
        ),
        (
            "the attack in an spf comment: a quoted local part with parens",
            "mx.example.org; spf=pass (mx.example.org: domain of \"a) ; dkim=pass header.d=example.test (x\"@evil.test \
             designates 192.0.2.1 as permitted sender) smtp.mailfrom=\"a) ; dkim=pass header.d=example.test (x\"@evil.test",
            Ok("mx.example.org; spf=pass smtp.mailfrom=\"\\\"a) ; dkim=pass header.d=example.test (x\\\"@evil.test\""),
        ),
        (
            "quoted string with an escaped quote inside a comment",
            "mx.example.org; spf=pass (domain of \"a\\\") dkim=pass (\"@evil.test) smtp.mailfrom=evil.test",
            Ok("mx.example.org; spf=pass smtp.mailfrom=evil.test"),
        ),
        (
            "a `(` in a quoted string opens no comment",
            "mx.example.org; dkim=fail reason=\"bad (key\" header.d=example.com",
            Ok("mx.example.org; dkim=fail reason=\"bad (key\" header.d=example.com"),
        ),
        (
            "base64 and URIs in values",
            "mx.example.org; dkim=pass header.d=example.com header.b=\"a+b/c=\" header.s=x; bimi=pass header.d=example.com \
             header.selector=default policy.authority=pass policy.indicator-uri=https://example.com/bimi/logo.svg",
            Ok("mx.example.org; dkim=pass header.d=example.com header.b=a+b/c= header.s=x; bimi=pass header.d=example.com \
                header.selector=default policy.authority=pass policy.indicator-uri=https://example.com/bimi/logo.svg"),
        ),
        (
            "empty envelope sender",
            "mx.example.org; spf=none smtp.mailfrom=; spf=pass smtp.mailfrom=\"\" smtp.helo=mail.example.com",
            Ok("mx.example.org; spf=none smtp.mailfrom=\"\"; spf=pass smtp.mailfrom=\"\" smtp.helo=mail.example.com"),
        ),
        (
            "unicode in comments and values",
            "mx.example.org; dkim=pass (schlüssel; ok) header.d=bücher.example header.i=@bücher.example",
            Ok("mx.example.org; dkim=pass header.d=bücher.example header.i=@bücher.example"),
        ),
        (
            "unterminated comment swallows nothing",
            "mx.example.org; spf=pass (oops; dkim=pass header.d=example.com",
            Err("comment opened at byte 25 is not closed"),
        ),
        (
            "unterminated quoted string swallows nothing",
            "mx.example.org; spf=pass smtp.mailfrom=\"a;dkim=pass header.d=example.com",
            Err("quoted string opened at byte 39 is not closed"),
        ),
        ("empty", "  ", Err("no authserv-id")),
        ("no authserv-id before `;`", "; dkim=pass", Err("no authserv-id")),
        ("missing method", "mx.example.org; =pass", Err("expected a method at byte 16")),
        ("missing result", "mx.example.org; dkim=", Err("expected a result at byte 21")),
        (
            "a word where a property belongs",
            "mx.example.org; dkim=pass unprotected header.d=example.com",
            Err("expected `=` after the property at byte 38"),
        ),
        ("junk after none", "mx.example.org; none dkim=pass", Err("expected `;` at byte 21")),
        ("stray `)`", "mx.example.org; dkim=pass) header.d=x", Err("expected a property or `;` at byte 25")),
        ("huge version", "mx.example.org 99999999999; none", Err("number at byte 15 is too large")),
    ];

    #[test]
    fn real_world_headers() {
        assert!(TABLE.len() >= 30, "issue 10 asks for at least 30 headers");
        for (name, value, want) in TABLE {
            let got = parse(value);
            match (want, &got) {
                (Ok(want), Ok(h)) => {
                    let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
                    assert_eq!(render(h), want, "{name}: {value}");
                }
                (Err(want), Err(e)) => {
                    assert!(e.to_string().contains(want), "{name}: {e} (want {want:?})")
                }
                _ => panic!("{name}: {value}\ngot {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_attack_value_keeps_one_result() {
        let h = parse("mx.example.org; spf=pass smtp.mailfrom=\"a;dkim=pass header.d=example.test\"@evil.test")
            .unwrap();
        assert_eq!(h.results.len(), 1);
        assert_eq!(h.results[0].method, "spf");
        assert_eq!(
            h.results[0].prop("smtp.mailfrom"),
            Some("\"a;dkim=pass header.d=example.test\"@evil.test")
        );
        assert_eq!(h.results[0].prop("header.d"), None);
    }

    #[test]
    fn prop_finds_ptype_and_bare_names() {
        let h =
            parse("x; dmarc=pass action=none Header.From=example.com header.from=second.example")
                .unwrap();
        let r = &h.results[0];
        assert_eq!(r.prop("header.from"), Some("example.com"), "the first one");
        assert_eq!(r.prop("HEADER.FROM"), Some("example.com"));
        assert_eq!(r.prop("action"), Some("none"));
        assert_eq!(r.prop("header.d"), None);
        assert_eq!(r.prop("from"), None, "a ptype is part of the name");
    }

    #[test]
    fn authserv_id_alone_reads_past_bad_results() {
        assert_eq!(
            authserv_id("MX.example.org 1; dkim=pass (unterminated").as_deref(),
            Ok("mx.example.org")
        );
        assert_eq!(authserv_id("spf=pass smtp.mailfrom=x").as_deref(), Ok(""));
        assert_eq!(authserv_id(""), Err(AuthResError::MissingAuthservId));
    }

    #[test]
    fn limits_are_errors() {
        let long = format!("mx.example.org; dkim=pass header.b={}", "a".repeat(MAX_LEN));
        assert_eq!(
            parse(&long),
            Err(AuthResError::TooLong {
                len: long.len(),
                limit: MAX_LEN
            })
        );
        let many = |n: usize| format!("mx.example.org{}", "; spf=pass".repeat(n));
        assert_eq!(
            parse(&many(MAX_RESULTS)).map(|h| h.results.len()),
            Ok(MAX_RESULTS)
        );
        assert_eq!(
            parse(&many(MAX_RESULTS + 1)),
            Err(AuthResError::TooManyResults { limit: MAX_RESULTS })
        );
        let deep = |n: usize| {
            format!(
                "mx.example.org; dkim=pass {}x{}",
                "(".repeat(n),
                ")".repeat(n)
            )
        };
        assert!(parse(&deep(MAX_COMMENT_DEPTH)).is_ok());
        assert!(matches!(
            parse(&deep(MAX_COMMENT_DEPTH + 1)),
            Err(AuthResError::CommentTooDeep { .. })
        ));
        // Thousands of open parentheses cost one pass and an error, no recursion.
        let err = parse(&format!("mx; dkim=pass {}", "(".repeat(MAX_LEN - 20))).unwrap_err();
        assert!(matches!(err, AuthResError::CommentTooDeep { .. }), "{err}");
    }

    proptest::proptest! {
        /// Strangers' text never panics the parser, and whatever it reads back holds no
        /// more results than `;`s.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
            if let Ok(h) = parse(&s) {
                proptest::prop_assert!(h.results.len() <= s.matches(';').count() + 1);
            }
            let _ = authserv_id(&s);
        }

        /// Text built from the grammar's own pieces, where the tricky paths are.
        #[test]
        fn grammar_pieces_never_panic(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "mx.example.org", " ", ";", "(", ")", "\"", "\\", "=", ".", "/", "@", "dkim", "pass",
                "header", "d", "1", "none", "reason", "é", "\t", "\r\n",
            ]),
            0..60,
        )) {
            let s: String = parts.concat();
            let _ = parse(&s);
            let _ = authserv_id(&s);
        }
    }
}
