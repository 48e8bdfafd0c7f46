//! OAuth 2.0 for mailboxes that log in with a token (Microsoft 365, Google Workspace, any
//! authorization server): the token file, the login, and a [`TokenSource`] that hands IMAP
//! and SMTP a fresh access token.
//!
//! Contract:
//! - Tokens come only from `postdesk login MAILBOX` ([`login`]) and live in the mailbox's
//!   token file ([`tokens`]); nothing else holds them across restarts.
//! - [`TokenSource::access_token`] returns a token good for at least [`MARGIN`]; otherwise it
//!   refreshes first. A refresh writes the new tokens (a rotated refresh token included) to
//!   the file before anyone uses them, and the old refresh token is forgotten.
//! - A token a server refused is refreshed on the next call ([`TokenSource::rejected`]).
//! - A refresh the server refuses (`invalid_grant`: revoked, expired, password changed)
//!   is [`OAuthError::NeedsLogin`]: nothing retries it until the token file changes, and
//!   the mailbox's alarm says to run `postdesk login` again. Network trouble is
//!   [`OAuthError::Unreachable`], retried by the caller with its backoff.
//! - A `postdesk login` done while the daemon runs is picked up on the next call (the file
//!   changed).
//! - The provider's endpoints are reached with the mailbox's TLS settings (its `ca_file`).
//! - Tokens never reach a log line; errors carry the server's error code and text only.

pub mod login;
pub mod sasl;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields, RefreshToken,
    RequestTokenError, StandardRevocableToken, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::{OAuth, Secret};
use crate::model::MailboxName;
use crate::tls::{Setting, TlsError};

/// An access token with less than this left is refreshed before use.
pub const MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("mailbox {mailbox} has no OAuth token yet: run `postdesk login {mailbox}`")]
    NoToken { mailbox: MailboxName },
    #[error(
        "the authorization server refused mailbox {mailbox}'s refresh token ({reason}): \
         run `postdesk login {mailbox}` again"
    )]
    NeedsLogin {
        mailbox: MailboxName,
        reason: String,
    },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    File(#[from] tokens::FileError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl OAuthError {
    /// Only a new `postdesk login` mends this.
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            OAuthError::NoToken { .. } | OAuthError::NeedsLogin { .. }
        )
    }
}

/// Token endpoint fields beyond RFC 6749 that some providers send.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extra {
    /// Seconds the refresh token lasts (where the provider says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<u64>,
}
impl ExtraTokenFields for Extra {}

pub type Answer = StandardTokenResponse<Extra, BasicTokenType>;

/// The client for one mailbox's provider: endpoints set where the config has them.
pub type Client = oauth2::Client<
    BasicErrorResponse,
    Answer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointMaybeSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

fn url<T>(
    text: &str,
    make: fn(String) -> Result<T, oauth2::url::ParseError>,
) -> Result<T, OAuthError> {
    make(text.to_owned()).map_err(|e| OAuthError::Setup(format!("{text:?} is not a URL: {e}")))
}

/// The oauth2 client for `cfg`.
pub fn client(cfg: &OAuth) -> Result<Client, OAuthError> {
    let mut c = oauth2::Client::new(oauth2::ClientId::new(cfg.client_id.clone()))
        .set_token_uri(url(&cfg.token_url, oauth2::TokenUrl::new)?)
        .set_auth_uri_option(
            cfg.auth_url
                .as_deref()
                .map(|u| url(u, oauth2::AuthUrl::new))
                .transpose()?,
        )
        .set_device_authorization_url_option(
            cfg.device_authorization_url
                .as_deref()
                .map(|u| url(u, oauth2::DeviceAuthorizationUrl::new))
                .transpose()?,
        )
        .set_revocation_url_option(
            cfg.revocation_url
                .as_deref()
                .map(|u| url(u, oauth2::RevocationUrl::new))
                .transpose()?,
        );
    if let Some(secret) = &cfg.client_secret {
        c = c
            .set_client_secret(oauth2::ClientSecret::new(secret.expose().to_owned()))
            .set_auth_type(oauth2::AuthType::RequestBody);
    }
    Ok(c)
}

/// The HTTP client for `cfg`'s endpoints: the mailbox's TLS trust, no redirects (RFC 6749
/// 3.2 and the oauth2 crate's advice: a redirect could carry a code elsewhere).
pub fn http(cfg: &OAuth, mailbox: &str) -> Result<reqwest::Client, OAuthError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("postdesk/", env!("CARGO_PKG_VERSION")));
    if !cfg.tls.web_roots {
        b = b.tls_built_in_root_certs(false);
    }
    if let Some(pem) = crate::tls::ca_pem(&cfg.tls, &Setting::mailbox(mailbox))? {
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| OAuthError::Setup(format!("ca_file: {e}")))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
        .map_err(|e| OAuthError::Setup(format!("HTTP client: {e}")))
}

/// The token file's contents made from a token endpoint's answer. `previous` keeps what
/// the answer leaves out (a refresh that rotates nothing keeps the old refresh token).
pub fn stored(cfg: &OAuth, answer: &Answer, previous: Option<&tokens::Tokens>) -> tokens::Tokens {
    let now = Utc::now();
    let secs = |d: Duration| chrono::Duration::seconds(d.as_secs().min(i64::MAX as u64 / 2) as i64);
    let rotated = answer.refresh_token().map(|t| t.secret().clone());
    tokens::Tokens {
        provider: cfg.provider.as_str().to_owned(),
        client_id: cfg.client_id.clone(),
        access_token: answer.access_token().secret().clone(),
        expires_at: answer.expires_in().map(|d| now + secs(d)),
        refresh_token_expires_at: match (&rotated, answer.extra_fields().refresh_token_expires_in) {
            (_, Some(s)) => Some(now + secs(Duration::from_secs(s))),
            (Some(_), None) => None,
            (None, None) => previous.and_then(|p| p.refresh_token_expires_at),
        },
        refresh_token: rotated.or_else(|| previous.and_then(|p| p.refresh_token.clone())),
        scopes: answer
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .unwrap_or_else(|| cfg.scopes.clone()),
        obtained_at: previous.map_or(now, |p| p.obtained_at),
        refreshed_at: previous.map(|_| now),
    }
}

/// What `postdesk status` and the alarms show about a mailbox's token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenState {
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The last refresh failed for good: `postdesk login` is needed.
    pub needs_login: Option<String>,
}

struct Cache {
    tokens: Option<tokens::Tokens>,
    /// The file's mtime when it was read or written by us.
    seen: Option<SystemTime>,
    /// A server refused the current access token.
    rejected: bool,
    needs_login: Option<String>,
}

/// Fresh access tokens for one mailbox (shared by its IMAP task and the SMTP sender).
pub struct TokenSource {
    mailbox: MailboxName,
    cfg: Arc<OAuth>,
    cache: tokio::sync::Mutex<Cache>,
    state: std::sync::Mutex<TokenState>,
}

impl TokenSource {
    pub fn new(mailbox: MailboxName, cfg: Arc<OAuth>) -> Arc<TokenSource> {
        Arc::new(TokenSource {
            mailbox,
            cfg,
            cache: tokio::sync::Mutex::new(Cache {
                tokens: None,
                seen: None,
                rejected: false,
                needs_login: None,
            }),
            state: std::sync::Mutex::new(TokenState::default()),
        })
    }

    pub fn mailbox(&self) -> &MailboxName {
        &self.mailbox
    }

    pub fn config(&self) -> &OAuth {
        &self.cfg
    }

    /// The last known state of the token, for status and alarms.
    pub fn state(&self) -> TokenState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The server refused the token last handed out: the next call refreshes.
    pub async fn rejected(&self) {
        self.cache.lock().await.rejected = true;
    }

    /// An access token good for at least [`MARGIN`].
    pub async fn access_token(&self) -> Result<Secret, OAuthError> {
        let mut cache = self.cache.lock().await;
        let path = &self.cfg.token_file;
        let mtime = tokens::modified(path);
        if cache.tokens.is_none() || mtime != cache.seen {
            // First use, or `postdesk login` wrote new tokens: start over from the file.
            cache.tokens = tokens::read(path)?;
            cache.seen = mtime;
            cache.rejected = false;
            cache.needs_login = None;
        }
        let Some(current) = cache.tokens.clone() else {
            return Err(OAuthError::NoToken {
                mailbox: self.mailbox.clone(),
            });
        };
        if let Some(reason) = &cache.needs_login {
            return Err(OAuthError::NeedsLogin {
                mailbox: self.mailbox.clone(),
                reason: reason.clone(),
            });
        }
        let fresh = current.expires_at.is_some_and(|at| {
            at - Utc::now() > chrono::Duration::from_std(MARGIN).unwrap_or_default()
        });
        if fresh && !cache.rejected {
            self.publish(&current, None);
            return Ok(Secret::new(current.access_token));
        }
        // One refresh at a time across processes too (`postdesk check --connect` beside the
        // daemon): a refresh token used twice makes a rotating provider end the grant.
        let _lock = tokens::lock(path).await?;
        let on_disk = tokens::read(path)?;
        if let Some(other) = on_disk.filter(|t| t.refresh_token != current.refresh_token) {
            // Another process refreshed (or logged in) meanwhile: use its tokens.
            cache.seen = tokens::modified(path);
            cache.rejected = false;
            cache.tokens = Some(other.clone());
            self.publish(&other, None);
            return Ok(Secret::new(other.access_token));
        }
        match self.refresh(&current).await {
            Ok(next) => {
                // Two fsyncs: off the async workers, so the other mailboxes go on.
                let (file, t) = (path.clone(), next.clone());
                tokio::task::spawn_blocking(move || tokens::write(&file, &t))
                    .await
                    .map_err(|e| OAuthError::Setup(format!("token write task: {e}")))??;
                cache.seen = tokens::modified(path);
                cache.rejected = false;
                cache.tokens = Some(next.clone());
                self.publish(&next, None);
                tracing::info!(
                    mailbox = %self.mailbox,
                    expires_at = ?next.expires_at,
                    rotated = next.refresh_token != current.refresh_token,
                    "access token refreshed"
                );
                Ok(Secret::new(next.access_token))
            }
            Err(e) => {
                if let OAuthError::NeedsLogin { reason, .. } = &e {
                    cache.needs_login = Some(reason.clone());
                    self.publish(&current, Some(reason.clone()));
                }
                Err(e)
            }
        }
    }

    fn publish(&self, t: &tokens::Tokens, needs_login: Option<String>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = TokenState {
            access_expires_at: t.expires_at,
            refresh_expires_at: t.refresh_token_expires_at,
            refreshed_at: t.refreshed_at,
            needs_login,
        };
    }

    async fn refresh(&self, current: &tokens::Tokens) -> Result<tokens::Tokens, OAuthError> {
        let Some(refresh) = &current.refresh_token else {
            return Err(OAuthError::NeedsLogin {
                mailbox: self.mailbox.clone(),
                reason: "the access token expired and the server gave no refresh token".to_owned(),
            });
        };
        let client = client(&self.cfg)?;
        let http = http(&self.cfg, self.mailbox.as_str())?;
        let token = RefreshToken::new(refresh.clone());
        let answer = client
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map_err(|e| self.refresh_error(e))?;
        Ok(stored(&self.cfg, &answer, Some(current)))
    }

    fn refresh_error<E: std::error::Error>(
        &self,
        e: RequestTokenError<E, BasicErrorResponse>,
    ) -> OAuthError {
        match e {
            RequestTokenError::ServerResponse(r) => {
                let reason = match r.error_description() {
                    Some(d) => format!("{}: {d}", r.error()),
                    None => r.error().to_string(),
                };
                match r.error() {
                    BasicErrorResponseType::InvalidGrant
                    | BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient
                    | BasicErrorResponseType::InvalidScope => OAuthError::NeedsLogin {
                        mailbox: self.mailbox.clone(),
                        reason,
                    },
                    _ => OAuthError::Unreachable {
                        url: self.cfg.token_url.clone(),
                        reason,
                    },
                }
            }
            RequestTokenError::Request(e) => OAuthError::Unreachable {
                url: self.cfg.token_url.clone(),
                reason: error_chain(&e),
            },
            other => OAuthError::Unreachable {
                url: self.cfg.token_url.clone(),
                reason: other.to_string(),
            },
        }
    }
}

/// An error with its causes, `a: b: c` (reqwest hides the TLS reason two levels down).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// One token source per mailbox that logs in with OAuth.
#[derive(Clone, Default)]
pub struct Tokens(Arc<std::collections::HashMap<MailboxName, Arc<TokenSource>>>);

impl Tokens {
    pub fn for_config(cfg: &crate::config::Config) -> Tokens {
        let mut map = std::collections::HashMap::new();
        for m in &cfg.mailboxes {
            if let crate::config::Login::OAuth2(o) = &m.imap.auth {
                map.insert(m.name.clone(), TokenSource::new(m.name.clone(), o.clone()));
            }
        }
        Tokens(Arc::new(map))
    }

    pub fn get(&self, mailbox: &MailboxName) -> Option<Arc<TokenSource>> {
        self.0.get(mailbox).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Provider, SaslMechanism, Tls};

    fn cfg(dir: &std::path::Path) -> Arc<OAuth> {
        Arc::new(OAuth {
            provider: Provider::Custom,
            client_id: "postdesk".into(),
            client_secret: None,
            device_authorization_url: Some("https://127.0.0.1:9/device".into()),
            auth_url: None,
            // Nothing listens there: a refresh would fail as unreachable.
            token_url: "https://127.0.0.1:9/token".into(),
            revocation_url: None,
            scopes: vec!["imap".into()],
            mechanism: SaslMechanism::Xoauth2,
            token_file: dir.join("tokens/support.json"),
            tls: Tls::default(),
        })
    }

    fn file(access: &str, expires_in: i64, refresh: Option<&str>) -> tokens::Tokens {
        tokens::Tokens {
            provider: "custom".into(),
            client_id: "postdesk".into(),
            access_token: access.into(),
            expires_at: Some(Utc::now() + chrono::Duration::seconds(expires_in)),
            refresh_token: refresh.map(str::to_owned),
            refresh_token_expires_at: None,
            scopes: vec![],
            obtained_at: Utc::now(),
            refreshed_at: None,
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn without_a_token_file_the_error_says_to_log_in() {
        let dir = tempfile::tempdir().unwrap();
        let src = TokenSource::new(MailboxName::new("support".to_owned()), cfg(dir.path()));
        let err = run(src.access_token()).unwrap_err();
        assert!(err.needs_login(), "{err}");
        assert!(
            err.to_string().contains("run `postdesk login support`"),
            "{err}"
        );
    }

    #[test]
    fn a_fresh_token_is_handed_out_and_a_new_login_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        tokens::write(&c.token_file, &file("first", 3600, Some("r1"))).unwrap();
        let src = TokenSource::new(MailboxName::new("support".to_owned()), c.clone());
        assert_eq!(run(src.access_token()).unwrap().expose(), "first");
        // `postdesk login` writes a new file while the daemon runs.
        std::thread::sleep(std::time::Duration::from_millis(20));
        tokens::write(&c.token_file, &file("second", 3600, Some("r2"))).unwrap();
        assert_eq!(run(src.access_token()).unwrap().expose(), "second");
        assert!(src.state().access_expires_at.is_some());
    }

    #[test]
    fn an_expired_token_without_a_refresh_token_needs_a_login() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        tokens::write(&c.token_file, &file("old", -10, None)).unwrap();
        let src = TokenSource::new(MailboxName::new("support".to_owned()), c);
        let err = run(src.access_token()).unwrap_err();
        assert!(err.needs_login(), "{err}");
    }

    #[test]
    fn an_unreachable_token_endpoint_is_retried_not_a_login_problem() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        tokens::write(&c.token_file, &file("old", 60, Some("r1"))).unwrap();
        let src = TokenSource::new(MailboxName::new("support".to_owned()), c.clone());
        // Less than MARGIN left: a refresh is tried, and fails for want of a server.
        let err = run(src.access_token()).unwrap_err();
        assert!(!err.needs_login(), "{err}");
        assert!(matches!(err, OAuthError::Unreachable { .. }), "{err}");
        // The stored refresh token is untouched.
        assert_eq!(
            tokens::read(&c.token_file)
                .unwrap()
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("r1")
        );
    }
}
