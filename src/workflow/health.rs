//! Mailbox health and alarms (issue 14): when a mailbox's incident opens and closes, and
//! the one mail to `[alerts] to` for each.
//!
//! In: the store's mailbox rows ([`MailboxHealth`]), each OAuth mailbox's
//! [`TokenState`], the daemon's start time and now. Out: [`Change`]s, applied in the write
//! transaction that read the rows (incident columns, alert mail, outbox row), then logged.
//! - [`decide`] is pure: same row, rules and time, same answer.
//! - An alarm opens at once when the login is refused (`record_auth_failure` during this
//!   run, or the authorization server refused the refresh token), and when no IDLE or poll
//!   round completed for `alert_after` since the last one or since the daemon started,
//!   whichever is later (a restart gives every mailbox `alert_after` to sync). The login
//!   reason wins when both hold.
//! - It closes only when a sync completes after it began and the login is not refused; a
//!   restart neither closes nor reopens it (it lives in the store). A change of kind or
//!   reason inside an open alarm is stored, not mailed.
//! - A refresh token that the provider says expires within `token_expiry_warning` opens
//!   a warning of its own, closed when a new login moves the expiry out (or drops it).
//! - Each opening and each closing queues exactly one mail (OutboxKind::Alert) in the same
//!   transaction as the stored state, so a crash cannot send it twice or lose it; no mail
//!   when `[alerts] to` is empty. The log says `error` when an incident opens, `info` when
//!   it closes.
//! - A token state the daemon has not seen yet (no login tried since the start) is no
//!   news: the stored one stands until the token source publishes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Desk, Engine};
use crate::config::{Login, Mailbox};
use crate::model::{AlarmKind, AuthState, MailboxName};
use crate::oauth::TokenState;
use crate::store::{Incident, MailboxHealth, StoreError, TokenRecord, Tx};

/// What the decision needs from the configuration and the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub alert_after: Duration,
    pub token_expiry_warning: Duration,
    /// When this daemon started: staleness counts from here at the earliest, and a refused
    /// login recorded before it (by an earlier run) waits for the next attempt.
    pub started_at: DateTime<Utc>,
}

/// How a mailbox logs in, for what the alarm mail advises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    Password,
    OAuth,
}

/// What to do about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Run `postdesk login MAILBOX`.
    Login,
    /// Check the password file.
    PasswordFile,
    /// Check the server and the network.
    Server,
}

impl Advice {
    pub fn of(kind: AlarmKind, login: LoginKind) -> Advice {
        match (kind, login) {
            (AlarmKind::LoginFailed, LoginKind::Password) => Advice::PasswordFile,
            (AlarmKind::LoginFailed, LoginKind::OAuth) | (AlarmKind::TokenExpiring, _) => {
                Advice::Login
            }
            (AlarmKind::NotSyncing, _) => Advice::Server,
        }
    }

    /// The templates' name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Advice::Login => "login",
            Advice::PasswordFile => "password",
            Advice::Server => "server",
        }
    }
}

/// One step of one mailbox's incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new incident: stored, logged at `error`, mailed.
    Opened(Incident),
    /// The open incident's kind or reason changed: stored, not mailed.
    Changed { from: Incident, to: Incident },
    /// The incident is over: cleared, logged at `info`, mailed.
    Closed(Incident),
}

impl Change {
    pub fn incident(&self) -> &Incident {
        match self {
            Change::Opened(i) | Change::Closed(i) | Change::Changed { to: i, .. } => i,
        }
    }
}

/// A time as alarms show it.
fn shown(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The incidents of one mailbox after looking at `h` at `now`: at most one change for the
/// alarm and one for the token warning.
pub fn decide(h: &MailboxHealth, rules: &Rules, now: DateTime<Utc>) -> Vec<Change> {
    [alarm(h, rules, now), token_warning(h, rules, now)]
        .into_iter()
        .flatten()
        .collect()
}

/// Why the login is refused now, if it is: (when, reason). `fresh_only` leaves out a
/// refusal recorded before this daemon started.
fn refused(
    h: &MailboxHealth,
    rules: &Rules,
    now: DateTime<Utc>,
    fresh_only: bool,
) -> Option<(DateTime<Utc>, String)> {
    let failed_at = h
        .auth_failed_at
        .filter(|_| h.auth_state == Some(AuthState::Failed));
    if let Some(reason) = &h.token.needs_login {
        return Some((
            failed_at.unwrap_or(now),
            format!("the authorization server refused the refresh token: {reason}"),
        ));
    }
    if h.auth_state != Some(AuthState::Failed) {
        return None;
    }
    if fresh_only && failed_at.is_some_and(|at| at < rules.started_at) {
        return None;
    }
    Some((
        failed_at.unwrap_or(now),
        h.auth_error
            .clone()
            .unwrap_or_else(|| "the server refused the login".to_owned()),
    ))
}

/// The alarm the mailbox's state calls for, if any.
fn wanted_alarm(h: &MailboxHealth, rules: &Rules, now: DateTime<Utc>) -> Option<Incident> {
    if let Some((since, reason)) = refused(h, rules, now, true) {
        return Some(Incident {
            kind: AlarmKind::LoginFailed,
            since,
            reason,
        });
    }
    let from = h
        .last_sync_at
        .map_or(rules.started_at, |s| s.max(rules.started_at));
    let quiet = (now - from).to_std().unwrap_or_default();
    if quiet < rules.alert_after {
        return None;
    }
    let within = crate::config::format_duration(rules.alert_after);
    Some(Incident {
        kind: AlarmKind::NotSyncing,
        since: h.last_sync_at.unwrap_or(rules.started_at),
        reason: match &h.last_error {
            Some(e) => format!("no completed sync within {within}; last error: {e}"),
            None => format!("no IDLE or poll round completed within {within}"),
        },
    })
}

fn alarm(h: &MailboxHealth, rules: &Rules, now: DateTime<Utc>) -> Option<Change> {
    let wanted = wanted_alarm(h, rules, now);
    let Some(open) = &h.alarm else {
        return wanted.map(Change::Opened);
    };
    let synced_since = h.last_sync_at.is_some_and(|s| s > open.since);
    if synced_since && refused(h, rules, now, false).is_none() {
        return Some(Change::Closed(open.clone()));
    }
    let to = wanted?;
    (to.kind != open.kind || to.reason != open.reason).then(|| Change::Changed {
        from: open.clone(),
        to: Incident {
            since: open.since,
            ..to
        },
    })
}

fn token_warning(h: &MailboxHealth, rules: &Rules, now: DateTime<Utc>) -> Option<Change> {
    let window =
        chrono::Duration::from_std(rules.token_expiry_warning).unwrap_or(chrono::Duration::MAX);
    let wanted = h
        .token
        .refresh_expires_at
        .filter(|at| *at - now <= window)
        .map(|at| Incident {
            kind: AlarmKind::TokenExpiring,
            since: now,
            reason: if at <= now {
                format!("the refresh token expired at {}", shown(at))
            } else {
                format!("the refresh token expires at {}", shown(at))
            },
        });
    match (&h.token_warning, wanted) {
        (None, Some(w)) => Some(Change::Opened(w)),
        (Some(open), None) => Some(Change::Closed(open.clone())),
        (Some(open), Some(w)) if w.reason != open.reason => Some(Change::Changed {
            from: open.clone(),
            to: Incident {
                since: open.since,
                ..w
            },
        }),
        _ => None,
    }
}

/// A token state as the store keeps it; `None` while the daemon has seen nothing yet.
fn known(state: &TokenState) -> Option<TokenRecord> {
    (*state != TokenState::default()).then(|| TokenRecord {
        expires_at: state.access_expires_at,
        refresh_expires_at: state.refresh_expires_at,
        needs_login: state.needs_login.clone(),
    })
}

fn login_kind(m: &Mailbox) -> LoginKind {
    match m.imap.auth {
        Login::Password(_) => LoginKind::Password,
        Login::OAuth2(_) => LoginKind::OAuth,
    }
}

impl Engine {
    /// One round of the health check, in one transaction: stores the live token states
    /// that changed, applies [`decide`] to every configured mailbox and queues the mails.
    pub(crate) fn check_mailboxes(
        &self,
        tx: &mut Tx<'_>,
        tokens: &HashMap<MailboxName, TokenState>,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(MailboxName, Change)>, StoreError> {
        let rules = Rules {
            alert_after: self.cfg.alerts.alert_after,
            token_expiry_warning: self.cfg.alerts.token_expiry_warning,
            started_at,
        };
        let names: Vec<MailboxName> = self.cfg.mailboxes.iter().map(|m| m.name.clone()).collect();
        let rows = tx.mailbox_health(&names)?;
        let mut out = Vec::new();
        for (mb, mut h) in self.cfg.mailboxes.iter().zip(rows) {
            if let Some(live) = tokens.get(&mb.name).and_then(known) {
                if live != h.token {
                    tx.record_token_state(&mb.name, &live)?;
                    h.token = live;
                }
            }
            for change in decide(&h, &rules, now) {
                self.apply_change(tx, mb, &h, &change, now)?;
                out.push((mb.name.clone(), change));
            }
        }
        Ok(out)
    }

    fn apply_change(
        &self,
        tx: &mut Tx<'_>,
        mb: &Mailbox,
        h: &MailboxHealth,
        change: &Change,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (incident, recovered) = match change {
            Change::Opened(i) => {
                tx.record_incident(&mb.name, i)?;
                (i, false)
            }
            Change::Changed { to, .. } => return tx.record_incident(&mb.name, to),
            Change::Closed(i) => {
                tx.close_incident(&mb.name, i.kind.slot())?;
                (i, true)
            }
        };
        let context = minijinja::context! {
            mailbox => mb.name.as_str(),
            address => &mb.address,
            kind => incident.kind.as_str(),
            advice => Advice::of(incident.kind, login_kind(mb)).as_str(),
            recovered => recovered,
            since => shown(incident.since),
            reason => &incident.reason,
            expires => h.token.refresh_expires_at.map(shown),
            ended => shown(now),
        };
        let language = self.queue(&mb.queue).language;
        self.queue_alert(tx, &mb.name, language, context, now)?;
        Ok(())
    }
}

impl Desk {
    /// One round of the mailbox health check (the daemon runs one a second): decides and
    /// stores in one write, then logs each change.
    pub async fn check_mailboxes(
        &self,
        tokens: &crate::oauth::Tokens,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(MailboxName, Change)>, StoreError> {
        let engine = self.engine().clone();
        let states: HashMap<MailboxName, TokenState> = engine
            .cfg
            .mailboxes
            .iter()
            .filter_map(|m| Some((m.name.clone(), tokens.get(&m.name)?.state())))
            .collect();
        let changes = self
            .store()
            .write(move |tx| engine.check_mailboxes(tx, &states, started_at, now))
            .await?;
        for (mailbox, change) in &changes {
            log(mailbox, change);
        }
        Ok(changes)
    }
}

fn log(mailbox: &MailboxName, change: &Change) {
    match change {
        Change::Opened(i) => tracing::error!(
            mailbox = %mailbox,
            kind = i.kind.as_str(),
            since = %shown(i.since),
            reason = %i.reason,
            "mailbox alarm raised"
        ),
        Change::Changed { to, .. } => tracing::info!(
            mailbox = %mailbox,
            kind = to.kind.as_str(),
            reason = %to.reason,
            "mailbox alarm goes on"
        ),
        Change::Closed(i) => tracing::info!(
            mailbox = %mailbox,
            kind = i.kind.as_str(),
            since = %shown(i.since),
            "mailbox alarm over"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The daemon's start, plus `minutes`.
    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn rules() -> Rules {
        Rules {
            alert_after: Duration::from_secs(600),
            token_expiry_warning: Duration::from_secs(14 * 86_400),
            started_at: t(0),
        }
    }

    fn mailbox() -> MailboxHealth {
        MailboxHealth::unknown(MailboxName::new("support"))
    }

    fn synced(at: i64) -> MailboxHealth {
        MailboxHealth {
            last_sync_at: Some(t(at)),
            auth_state: Some(AuthState::Ok),
            ..mailbox()
        }
    }

    fn refused_at(at: i64, error: &str) -> MailboxHealth {
        MailboxHealth {
            auth_state: Some(AuthState::Failed),
            auth_error: Some(error.to_owned()),
            auth_failed_at: Some(t(at)),
            last_error: Some(error.to_owned()),
            ..mailbox()
        }
    }

    fn incident(kind: AlarmKind, since: i64, reason: &str) -> Incident {
        Incident {
            kind,
            since: t(since),
            reason: reason.to_owned(),
        }
    }

    fn check(h: &MailboxHealth, now: i64) -> Vec<Change> {
        decide(h, &rules(), t(now))
    }

    const QUIET: &str = "no IDLE or poll round completed within 10m";

    #[test]
    fn a_mailbox_that_never_syncs_alarms_after_alert_after_from_the_start() {
        assert_eq!(check(&mailbox(), 9), []);
        assert_eq!(
            check(&mailbox(), 10),
            [Change::Opened(incident(AlarmKind::NotSyncing, 0, QUIET))]
        );
    }

    #[test]
    fn a_mailbox_that_stops_syncing_alarms_since_its_last_sync() {
        assert_eq!(check(&synced(5), 14), []);
        let mut h = synced(5);
        h.last_error = Some("cannot connect to imap.acme.test:993".to_owned());
        assert_eq!(
            check(&h, 15),
            [Change::Opened(incident(
                AlarmKind::NotSyncing,
                5,
                "no completed sync within 10m; last error: cannot connect to imap.acme.test:993"
            ))]
        );
    }

    #[test]
    fn a_restart_gives_every_mailbox_alert_after_to_sync() {
        // Last synced an hour before this start: no alarm at once, one after alert_after.
        let h = synced(-60);
        assert_eq!(check(&h, 1), []);
        assert_eq!(
            check(&h, 10),
            [Change::Opened(incident(AlarmKind::NotSyncing, -60, QUIET))]
        );
    }

    #[test]
    fn a_refused_login_alarms_at_once() {
        let h = refused_at(
            1,
            "LOGIN refused: [AUTHENTICATIONFAILED] invalid credentials",
        );
        assert_eq!(
            check(&h, 1),
            [Change::Opened(incident(
                AlarmKind::LoginFailed,
                1,
                "LOGIN refused: [AUTHENTICATIONFAILED] invalid credentials"
            ))]
        );
        // One recorded by an earlier run waits for this run's first attempt.
        assert_eq!(check(&refused_at(-5, "refused"), 1), []);
        // The login reason wins over the quiet one.
        assert_eq!(
            check(&refused_at(-5, "refused"), 30)[0].incident().kind,
            AlarmKind::NotSyncing
        );
        assert_eq!(
            check(&refused_at(20, "refused"), 30)[0].incident().kind,
            AlarmKind::LoginFailed
        );
    }

    #[test]
    fn a_refresh_token_refused_by_the_provider_alarms_at_once() {
        let mut h = synced(0);
        h.token.needs_login = Some("invalid_grant: AADSTS70008 expired".to_owned());
        assert_eq!(
            check(&h, 1),
            [Change::Opened(incident(
                AlarmKind::LoginFailed,
                1,
                "the authorization server refused the refresh token: invalid_grant: AADSTS70008 expired"
            ))]
        );
    }

    #[test]
    fn an_open_alarm_is_raised_once_and_its_changes_are_not_new_alarms() {
        let mut h = refused_at(1, "refused");
        h.alarm = Some(incident(AlarmKind::LoginFailed, 1, "refused"));
        for now in [1, 2, 30, 600] {
            assert_eq!(check(&h, now), [], "at {now}");
        }
        // Another reason, or the other kind, inside the same incident: stored, same since.
        h.auth_error = Some("refused again".to_owned());
        assert_eq!(
            check(&h, 3),
            [Change::Changed {
                from: incident(AlarmKind::LoginFailed, 1, "refused"),
                to: incident(AlarmKind::LoginFailed, 1, "refused again"),
            }]
        );
        let mut quiet = synced(0);
        quiet.alarm = Some(incident(AlarmKind::NotSyncing, 0, QUIET));
        quiet.auth_state = Some(AuthState::Failed);
        quiet.auth_failed_at = Some(t(12));
        quiet.auth_error = Some("refused".to_owned());
        assert_eq!(
            check(&quiet, 12),
            [Change::Changed {
                from: incident(AlarmKind::NotSyncing, 0, QUIET),
                to: incident(AlarmKind::LoginFailed, 0, "refused"),
            }]
        );
    }

    #[test]
    fn a_sync_after_the_alarm_began_closes_it_once() {
        let open = incident(AlarmKind::NotSyncing, 5, QUIET);
        let mut h = synced(5);
        h.alarm = Some(open.clone());
        assert_eq!(check(&h, 20), []);
        h.last_sync_at = Some(t(21));
        assert_eq!(check(&h, 21), [Change::Closed(open.clone())]);
        // Once closed (as the store then says), nothing more.
        h.alarm = None;
        assert_eq!(check(&h, 22), []);
    }

    #[test]
    fn a_refused_login_closes_only_after_a_login_and_a_sync() {
        let open = incident(AlarmKind::LoginFailed, 3, "refused");
        let mut h = refused_at(3, "refused");
        h.last_sync_at = Some(t(0));
        h.alarm = Some(open.clone());
        // A login alone is not enough: nothing fetched yet.
        h.auth_state = Some(AuthState::Ok);
        h.last_login_at = Some(t(4));
        assert_eq!(check(&h, 4), []);
        h.last_sync_at = Some(t(5));
        assert_eq!(check(&h, 5), [Change::Closed(open.clone())]);
        // A sync while the refresh token is refused does not end it.
        h.token.needs_login = Some("invalid_grant".to_owned());
        assert_eq!(
            check(&h, 5)[0],
            Change::Changed {
                from: open.clone(),
                to: incident(
                    AlarmKind::LoginFailed,
                    3,
                    "the authorization server refused the refresh token: invalid_grant"
                ),
            }
        );
    }

    #[test]
    fn a_restart_keeps_the_open_alarm_without_mailing_again() {
        // Raised by the last run; this one started at t(0) and nothing has synced since.
        let mut h = synced(-60);
        h.alarm = Some(incident(AlarmKind::NotSyncing, -60, QUIET));
        for now in [0, 1, 9, 10, 60] {
            assert_eq!(check(&h, now), [], "at {now}");
        }
        h.last_sync_at = Some(t(2));
        assert_eq!(
            check(&h, 2),
            [Change::Closed(incident(AlarmKind::NotSyncing, -60, QUIET))]
        );
    }

    #[test]
    fn a_refresh_token_about_to_expire_warns_once_until_renewed() {
        let day = 24 * 60;
        let mut h = synced(0);
        h.token.refresh_expires_at = Some(t(15 * day));
        assert_eq!(check(&h, 1), []);
        h.token.refresh_expires_at = Some(t(13 * day));
        let warning = incident(
            AlarmKind::TokenExpiring,
            1,
            "the refresh token expires at 2026-12-08 12:00 UTC",
        );
        assert_eq!(check(&h, 1), [Change::Opened(warning.clone())]);
        h.token_warning = Some(warning.clone());
        assert_eq!(check(&h, 2), []);
        h.last_sync_at = Some(t(3 * day));
        assert_eq!(check(&h, 3 * day), []);
        // A new login moves the expiry out: one recovery.
        h.token.refresh_expires_at = Some(t(90 * day));
        assert_eq!(check(&h, 3 * day), [Change::Closed(warning.clone())]);
        // A password mailbox (no token) never warns.
        assert_eq!(check(&synced(0), 1), []);
    }

    #[test]
    fn the_warning_and_the_alarm_are_separate_incidents() {
        let mut h = mailbox();
        h.token.refresh_expires_at = Some(t(-1));
        h.token.needs_login = Some("invalid_grant".to_owned());
        let kinds: Vec<AlarmKind> = check(&h, 1).iter().map(|c| c.incident().kind).collect();
        assert_eq!(kinds, [AlarmKind::LoginFailed, AlarmKind::TokenExpiring]);
        assert_eq!(
            check(&h, 1)[1].incident().reason,
            "the refresh token expired at 2026-11-25 11:59 UTC"
        );
    }

    #[test]
    fn advice_follows_the_kind_and_the_login() {
        for (kind, login, want) in [
            (AlarmKind::LoginFailed, LoginKind::Password, "password"),
            (AlarmKind::LoginFailed, LoginKind::OAuth, "login"),
            (AlarmKind::TokenExpiring, LoginKind::OAuth, "login"),
            (AlarmKind::NotSyncing, LoginKind::OAuth, "server"),
            (AlarmKind::NotSyncing, LoginKind::Password, "server"),
        ] {
            assert_eq!(Advice::of(kind, login).as_str(), want, "{kind} {login:?}");
        }
    }

    #[test]
    fn an_unseen_token_state_is_no_news() {
        assert_eq!(known(&TokenState::default()), None);
        let state = TokenState {
            refresh_expires_at: Some(t(5)),
            ..TokenState::default()
        };
        assert_eq!(known(&state).and_then(|r| r.refresh_expires_at), Some(t(5)));
    }
}

/// The engine's side on the workflow bench: the mails each round queues.
#[cfg(test)]
mod bench {
    use super::*;
    use crate::workflow::testing::Bench;

    const OPS: &str = "ops@example.test";
    const CUSTOMER: &str = "ann@customer.test";

    fn bench(queue_keys: &str, alerts: &str) -> Bench {
        Bench::new(
            queue_keys,
            // One automatic mail per recipient an hour: alarms must not be held by it.
            &format!("[loop_protection]\nper_recipient = 1\n\n[alerts]\n{alerts}\n"),
        )
    }

    /// One health round at the bench's time, with no OAuth tokens.
    fn round(b: &mut Bench, started_at: DateTime<Utc>) -> Vec<(MailboxName, Change)> {
        let now = b.now();
        b.write(|e, tx| e.check_mailboxes(tx, &HashMap::new(), started_at, now))
    }

    /// The alert mails queued so far, as (recipients, subject).
    fn alerts(b: &Bench) -> Vec<(Vec<String>, String)> {
        b.reader()
            .outbox_list(None)
            .unwrap()
            .into_iter()
            .filter(|o| o.kind == crate::model::OutboxKind::Alert)
            .map(|o| (o.to, o.subject))
            .collect()
    }

    #[test]
    fn a_refused_login_mails_ops_once_and_its_recovery_once() {
        let mut b = bench("", &format!("to = [\"{OPS}\"]"));
        b.new_ticket(CUSTOMER, "Printer offline", "It is off.");
        let mb0 = MailboxName::new("mb0");
        let start = b.now();
        assert_eq!(round(&mut b, start), []);
        b.write(|_, tx| tx.record_login(&mb0, start));

        let at = b.now();
        b.write(|_, tx| tx.record_auth_failure(&mb0, "LOGIN refused: [AUTHENTICATIONFAILED]", at));
        let changes = round(&mut b, start);
        assert!(
            matches!(&changes[..], [(m, Change::Opened(i))] if *m == mb0 && i.kind == AlarmKind::LoginFailed),
            "{changes:?}"
        );
        // Later rounds, another refusal text, a restart: the same incident, no mail.
        for minute in 1..=20 {
            b.clock.advance(chrono::Duration::minutes(1));
            let at = b.now();
            b.write(|_, tx| tx.record_auth_failure(&mb0, &format!("refused ({minute})"), at));
            round(&mut b, start);
        }
        let restarted = b.now();
        round(&mut b, restarted);
        assert_eq!(
            alerts(&b),
            [(
                vec![OPS.to_owned()],
                "[postdesk] ALARM: mailbox mb0 cannot log in".to_owned()
            )]
        );
        let status = b.reader().status(&[]).unwrap();
        assert_eq!(
            status.mailboxes[0]
                .alarm
                .as_ref()
                .map(|a| a.reason.as_str()),
            Some("refused (20)")
        );

        // The password is fixed: a login, then a completed round.
        b.clock.advance(chrono::Duration::minutes(1));
        let at = b.now();
        b.write(|_, tx| {
            tx.record_login(&mb0, at)?;
            tx.record_sync(&mb0, "idle", at)
        });
        let changes = round(&mut b, restarted);
        assert!(
            matches!(&changes[..], [(_, Change::Closed(_))]),
            "{changes:?}"
        );
        for _ in 0..3 {
            b.clock.advance(chrono::Duration::seconds(1));
            assert_eq!(round(&mut b, restarted), []);
        }
        assert_eq!(
            alerts(&b),
            [
                (
                    vec![OPS.to_owned()],
                    "[postdesk] ALARM: mailbox mb0 cannot log in".to_owned()
                ),
                (
                    vec![OPS.to_owned()],
                    "[postdesk] RECOVERED: mailbox mb0 is fetching again".to_owned()
                ),
            ]
        );
        assert_eq!(b.reader().status(&[]).unwrap().mailboxes[0].alarm, None);
        // The customer had only the acknowledgement; no alarm reached a customer.
        assert_eq!(b.outbox_of("acknowledgement"), [vec![CUSTOMER.to_owned()]]);
        assert!(b
            .outbox()
            .iter()
            .filter(|(kind, _)| kind == "alert")
            .all(|(_, to)| to == &[OPS.to_owned()]));
    }

    #[test]
    fn a_mailbox_that_stops_fetching_alarms_after_alert_after_in_the_queue_language() {
        let mut b = bench(
            "language = \"zh-CN\"",
            &format!("to = [\"{OPS}\"]\nalert_after = \"5m\""),
        );
        let start = b.now();
        b.clock.advance(chrono::Duration::minutes(4));
        assert_eq!(round(&mut b, start), []);
        b.clock.advance(chrono::Duration::minutes(1));
        let changes = round(&mut b, start);
        assert!(
            matches!(&changes[..], [(_, Change::Opened(i))] if i.kind == AlarmKind::NotSyncing && i.since == start),
            "{changes:?}"
        );
        assert_eq!(
            alerts(&b),
            [(
                vec![OPS.to_owned()],
                "[postdesk] 告警：邮箱 mb0 未在收信".to_owned()
            )]
        );
    }

    #[test]
    fn without_recipients_the_alarm_is_kept_but_not_mailed() {
        let mut b = bench("", "alert_after = \"1m\"");
        let start = b.now();
        b.clock.advance(chrono::Duration::minutes(2));
        assert_eq!(round(&mut b, start).len(), 1);
        assert_eq!(alerts(&b), []);
        assert!(b.reader().status(&[]).unwrap().mailboxes[0].alarm.is_some());
    }
}
