//! `postdesk login MAILBOX`: a mailbox's first tokens, obtained headless.
//!
//! - **Device login** (RFC 8628; Microsoft 365 and any server with a device authorization
//!   endpoint): postdesk shows a URL and a code, the person opens the URL on any device,
//!   enters the code and signs in; postdesk polls the token endpoint meanwhile.
//! - **Browser login** (Google, whose device login does not allow mail scopes): postdesk
//!   shows an authorization URL (PKCE, a loopback redirect); the person opens it anywhere,
//!   signs in, and pastes back the address the browser was sent to (it does not need to
//!   load). The `state` in it must match.
//!
//! Either way the tokens are written to the mailbox's token file ([`super::tokens`]).

use std::time::Duration;

use oauth2::{PkceCodeChallenge, PkceCodeVerifier, RequestTokenError, Scope};

use super::{client, http, stored, tokens, OAuthError};
use crate::config::OAuth;

/// What the person must do to approve a device login.
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    pub verification_uri: String,
    pub user_code: String,
    /// The URL with the code in it, where the server offers one.
    pub verification_uri_complete: Option<String>,
    pub expires_in: Duration,
}

fn scopes(cfg: &OAuth) -> Vec<Scope> {
    cfg.scopes.iter().cloned().map(Scope::new).collect()
}

fn server_error<E: std::error::Error, T: oauth2::ErrorResponse>(
    url: &str,
    e: RequestTokenError<E, T>,
) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            OAuthError::Setup(format!("the authorization server said no: {r}"))
        }
        RequestTokenError::Request(e) => OAuthError::Unreachable {
            url: url.to_owned(),
            reason: super::error_chain(&e),
        },
        other => OAuthError::Unreachable {
            url: url.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Runs the device login: `show` is called once with what the person must do; returns when
/// they approved (tokens stored), refused, or the code expired.
pub async fn device(
    cfg: &OAuth,
    mailbox: &str,
    show: impl FnOnce(&DevicePrompt),
) -> Result<tokens::Tokens, OAuthError> {
    let device_url = cfg.device_authorization_url.clone().ok_or_else(|| {
        OAuthError::Setup(format!(
            "mailbox {mailbox}: this provider has no device login; use `postdesk login --browser {mailbox}`"
        ))
    })?;
    let c = client(cfg)?;
    let h = http(cfg, mailbox)?;
    let details: oauth2::StandardDeviceAuthorizationResponse = c
        .exchange_device_code()
        .map_err(|e| OAuthError::Setup(e.to_string()))?
        .add_scopes(scopes(cfg))
        .request_async(&h)
        .await
        .map_err(|e| server_error(&device_url, e))?;
    show(&DevicePrompt {
        verification_uri: details.verification_uri().to_string(),
        user_code: details.user_code().secret().clone(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().clone()),
        expires_in: details.expires_in(),
    });
    let answer = c
        .exchange_device_access_token(&details)
        .request_async(&h, tokio::time::sleep, None)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => OAuthError::Setup(match r.error() {
                oauth2::DeviceCodeErrorResponseType::AccessDenied => {
                    "the login was refused at the authorization server".to_owned()
                }
                oauth2::DeviceCodeErrorResponseType::ExpiredToken => {
                    "the code expired before anyone approved it; run `postdesk login` again"
                        .to_owned()
                }
                _ => format!("the authorization server said no: {r}"),
            }),
            other => server_error(&cfg.token_url, other),
        })?;
    let t = stored(cfg, &answer, None);
    tokens::write(&cfg.token_file, &t)?;
    Ok(t)
}

/// A browser login in progress: the URL to open, and what checks the pasted answer.
pub struct Browser {
    pub url: String,
    verifier: PkceCodeVerifier,
    state: String,
}

/// Where the browser is sent back to; nothing needs to listen there.
const REDIRECT: &str = "http://127.0.0.1:1/";

pub fn browser_start(cfg: &OAuth) -> Result<Browser, OAuthError> {
    let c = client(cfg)?.set_redirect_uri(
        oauth2::RedirectUrl::new(REDIRECT.to_owned())
            .map_err(|e| OAuthError::Setup(e.to_string()))?,
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = c
        .authorize_url(oauth2::CsrfToken::new_random)
        .map_err(|e| OAuthError::Setup(format!("no auth_url for a browser login: {e}")))?
        .add_scopes(scopes(cfg))
        // Google: a refresh token, and a consent screen even if consented before.
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .set_pkce_challenge(challenge)
        .url();
    Ok(Browser {
        url: url.to_string(),
        verifier,
        state: state.secret().clone(),
    })
}

/// Finishes a browser login with the address the browser was sent back to.
pub async fn browser_finish(
    cfg: &OAuth,
    mailbox: &str,
    login: Browser,
    pasted: &str,
) -> Result<tokens::Tokens, OAuthError> {
    let back = oauth2::url::Url::parse(pasted.trim()).map_err(|_| {
        OAuthError::Setup("that is not the address from the browser's address bar".to_owned())
    })?;
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(err) = param("error") {
        return Err(OAuthError::Setup(format!(
            "the authorization server said no: {err}"
        )));
    }
    if param("state").as_deref() != Some(login.state.as_str()) {
        return Err(OAuthError::Setup(
            "the address is not the answer to this login (its state does not match); start again"
                .to_owned(),
        ));
    }
    let code =
        param("code").ok_or_else(|| OAuthError::Setup("the address holds no code".to_owned()))?;
    let c = client(cfg)?.set_redirect_uri(
        oauth2::RedirectUrl::new(REDIRECT.to_owned())
            .map_err(|e| OAuthError::Setup(e.to_string()))?,
    );
    let h = http(cfg, mailbox)?;
    let answer = c
        .exchange_code(oauth2::AuthorizationCode::new(code))
        .set_pkce_verifier(login.verifier)
        .request_async(&h)
        .await
        .map_err(|e| server_error(&cfg.token_url, e))?;
    let t = stored(cfg, &answer, None);
    tokens::write(&cfg.token_file, &t)?;
    Ok(t)
}

/// `postdesk logout`: revokes the refresh token where the provider has a revocation
/// endpoint, then removes the token file.
pub async fn logout(cfg: &OAuth, mailbox: &str) -> Result<bool, OAuthError> {
    let Some(t) = tokens::read(&cfg.token_file)? else {
        return Ok(false);
    };
    let mut revoked = false;
    if let (Some(rt), Some(url)) = (&t.refresh_token, &cfg.revocation_url) {
        let token =
            oauth2::StandardRevocableToken::RefreshToken(oauth2::RefreshToken::new(rt.clone()));
        client(cfg)?
            .revoke_token(token)
            .map_err(|e| OAuthError::Setup(e.to_string()))?
            .request_async(&http(cfg, mailbox)?)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => OAuthError::Unreachable {
                    url: url.clone(),
                    reason: super::error_chain(&e),
                },
                other => OAuthError::Setup(format!("revocation failed: {other}")),
            })?;
        revoked = true;
    }
    std::fs::remove_file(&cfg.token_file).map_err(|e| tokens::FileError {
        path: cfg.token_file.clone(),
        reason: e.to_string(),
    })?;
    Ok(revoked)
}
