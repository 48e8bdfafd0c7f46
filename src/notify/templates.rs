//! Mail templates (minijinja), one folder per language.
//!
//! The templates in the repository's `templates/` are built into the binary, so that a
//! fresh install answers in English and Chinese without any file; `templates_dir` in the
//! configuration overrides them file by file (`<dir>/<language>/<name>.txt`).
//!
//! A template renders to `Subject: …`, an empty line, then the body.

use std::path::Path;

use minijinja::{Environment, Value};

use crate::model::Language;

/// Every template, by name; each exists in every language.
pub const NAMES: [&str; 12] = [
    "acknowledgement",
    "agent_notification",
    "answer",
    "status_change",
    "command_result",
    "command_refused",
    "survey",
    "sla_warning",
    "sla_breach",
    "digest",
    "alert",
    "self_service",
];

macro_rules! built_in {
    ($($lang:literal / $name:literal),+ $(,)?) => {
        [$(($lang, $name, include_str!(concat!("../../templates/", $lang, "/", $name, ".txt")))),+]
    };
}

const BUILT_IN: [(&str, &str, &str); 24] = built_in![
    "en" / "acknowledgement",
    "en" / "agent_notification",
    "en" / "answer",
    "en" / "status_change",
    "en" / "command_result",
    "en" / "command_refused",
    "en" / "survey",
    "en" / "sla_warning",
    "en" / "sla_breach",
    "en" / "digest",
    "en" / "alert",
    "en" / "self_service",
    "zh-CN" / "acknowledgement",
    "zh-CN" / "agent_notification",
    "zh-CN" / "answer",
    "zh-CN" / "status_change",
    "zh-CN" / "command_result",
    "zh-CN" / "command_refused",
    "zh-CN" / "survey",
    "zh-CN" / "sla_warning",
    "zh-CN" / "sla_breach",
    "zh-CN" / "digest",
    "zh-CN" / "alert",
    "zh-CN" / "self_service",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {message}")]
    Syntax { name: String, message: String },
    #[error("cannot read template {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template {name} rendered no `Subject:` line followed by an empty line")]
    NoSubject { name: String },
}

pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

fn key(language: Language, name: &str) -> String {
    format!("{}/{name}.txt", language.as_str())
}

impl Templates {
    /// The built-in templates, overridden by any file found under `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        for (lang, name, source) in BUILT_IN {
            let full = format!("{lang}/{name}.txt");
            let source = match dir.map(|d| d.join(&full)) {
                Some(path) if path.exists() => {
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                _ => source.to_owned(),
            };
            env.add_template_owned(full.clone(), source)
                .map_err(|e| TemplateError::Syntax {
                    name: full,
                    message: e.to_string(),
                })?;
        }
        Ok(Templates { env })
    }

    /// Renders `name` in `language`; returns (subject, body).
    pub fn render(
        &self,
        language: Language,
        name: &str,
        ctx: Value,
    ) -> Result<(String, String), TemplateError> {
        let full = key(language, name);
        let err = |e: minijinja::Error| TemplateError::Syntax {
            name: full.clone(),
            message: e.to_string(),
        };
        let text = self
            .env
            .get_template(&full)
            .map_err(err)?
            .render(ctx)
            .map_err(err)?;
        let text = text.replace("\r\n", "\n");
        let Some((head, body)) = text.split_once("\n\n") else {
            return Err(TemplateError::NoSubject { name: full });
        };
        let Some(subject) = head.trim().strip_prefix("Subject:") else {
            return Err(TemplateError::NoSubject { name: full });
        };
        Ok((
            subject.split_whitespace().collect::<Vec<_>>().join(" "),
            body.trim_end().to_owned() + "\n",
        ))
    }

    /// Renders every template in every language with sample data (`postdesk check`).
    pub fn check(&self) -> Result<usize, TemplateError> {
        let mut n = 0;
        for lang in Language::ALL {
            for name in NAMES {
                self.render(*lang, name, sample_context())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Every variable any template may use, with sample values. Keep in step with the
/// contexts `workflow` builds (README, "Templates").
pub fn sample_context() -> Value {
    minijinja::context! {
        ticket => 42,
        tag => "[ACME #42]",
        subject => "Printer offline",
        queue_name => "ACME Support",
        customer_name => "Alice Martin",
        customer_address => "alice@example.com",
        status => "resolved",
        status_zh => "已解决",
        priority => "normal",
        assignee => "Bob Agent",
        sla_due => "2026-11-25 17:00 CET (first response)",
        writer_name => "Tom Boss",
        writer_address => "tom@example.com",
        writer_is_requester => false,
        copied => vec!["tom@example.com"],
        attachments => vec!["screenshot.png"],
        withheld => vec!["video.mp4 (51200 KiB)"],
        answer_refused => (),
        text => "The printer on floor 3 is offline.",
        answer => "Please restart it; it should come back in a minute.",
        agent_name => "Bob Agent",
        reason => "mx.example.test reports dkim=fail",
        commands => vec!["#status resolved"],
        accepted => vec!["#priority high"],
        refused => vec![minijinja::context! { line => "#stauts closed", reason => "unknown command #stauts" }],
        links => vec!["mailto:support+csat-42-1-0@example.com", "mailto:2", "mailto:3", "mailto:4", "mailto:5"],
        deadline => "first_response",
        deadline_zh => "首次响应",
        due => "2026-11-25 17:00 CET",
        share => 80,
        actions => vec!["priority raised to high"],
        since => "2026-11-24",
        figures => minijinja::context! { new => 12, open => 30, breached => 2, at_risk => 3, ratings => 4 },
        first_response => "1h 05m",
        resolution => "2d 3h",
        rating => "4.5",
        problems => vec!["printer offline (5)", "发票 (4)"],
        mailbox => "support",
        address => "support@example.com",
        kind => "login-failed",
        advice => "login",
        recovered => false,
        expires => "2026-12-09 12:00 UTC",
        ended => "2026-11-25 12:10 UTC",
        // Knowledge base and self-service (issue 16).
        similar => vec![minijinja::context! { tag => "[ACME #12]", subject => "Printer offline", status => "resolved", answer => "Restart it from the panel." }],
        articles => vec![minijinja::context! { name => "printer-offline", title => "When the printer is offline", confidence => "0.80" }],
        tickets => vec![minijinja::context! { tag => "[ACME #42]", subject => "Printer offline", status => "open", updated => "2026-11-25 12:00" }],
        more => 0,
        asked => "status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_render() {
        assert_eq!(Templates::load(None).unwrap().check().unwrap(), 24);
    }

    /// What a customer (or a manager, for the digest) reads, with the values real mail
    /// carries: names, a four-digit tag, the five signed survey links.
    fn typical_contexts(language: Language) -> Vec<(&'static str, Value)> {
        use crate::model::{Status, TicketId};
        let key = crate::key::InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let tag = "[ACME #4217]";
        let links: Vec<String> = (1..=5)
            .map(|r| {
                let subject = format!("Rating {r} {tag}");
                crate::notify::survey::link(
                    "support@example.com",
                    &key,
                    TicketId::new(4217),
                    r,
                    &subject,
                )
            })
            .collect();
        let (customer_name, queue_name, subject, answer) = match language {
            Language::En => (
                "Alice Martin",
                "ACME Support",
                "Printer on floor 3 offline since this morning",
                "Hello Alice,\nplease switch it off and on again.\n\nBob",
            ),
            Language::ZhCn => (
                "张伟",
                "ACME 客服",
                "三楼的打印机从今天早上开始无法连接",
                "您好，\n请重启打印机。\n\n小李",
            ),
        };
        let base = minijinja::context! {
            ticket => 4217,
            tag => tag,
            subject => subject,
            queue_name => queue_name,
            customer_name => customer_name,
            customer_address => "alice.martin@customer.example.com",
            agent_name => "Bob Agent",
            answer => answer,
            links => links,
            since => "2026-11-24 08:00",
            figures => minijinja::context! { new => 128, open => 301, breached => 12, at_risk => 7, ratings => 45 },
            first_response => "1h 05m",
            resolution => "2d 3h",
            rating => "4.5",
            problems => vec!["printer offline floor (15)", "vpn drops hour (9)", "发票 退款 (4)"],
        };
        let (article, own) = match language {
            Language::En => (
                "When the printer on floor 3 is offline: restart",
                "Printer on floor 3 offline since this morning",
            ),
            Language::ZhCn => (
                "打印机无法连接时：重启打印机并检查网线",
                "三楼的打印机从今天早上开始无法连接",
            ),
        };
        let with_articles = minijinja::context! {
            articles => vec![minijinja::context! { name => "printer", title => article, confidence => "0.80" }],
            ..base.clone()
        };
        let with_tickets = minijinja::context! {
            tickets => vec![
                minijinja::context! { tag => "[ACME #4217]", subject => own, status => "open", updated => "2026-11-25 12:00" },
                minijinja::context! { tag => "[ACME #4218]", subject => "VPN", status => "pending", updated => "2026-11-25 12:05" },
            ],
            more => 0,
            asked => "status",
            ..base.clone()
        };
        let no_tickets = minijinja::context! { tickets => Vec::<String>::new(), more => 0, asked => "查询", ..base.clone() };
        let mut out = vec![
            ("acknowledgement", with_articles),
            ("self_service", with_tickets),
            ("self_service", no_tickets),
            ("acknowledgement", base.clone()),
            ("answer", base.clone()),
            ("survey", base.clone()),
            ("digest", base.clone()),
        ];
        // As `workflow::lifecycle::status_text` writes them.
        let zh = [
            (Status::New, "待分配"),
            (Status::Open, "处理中"),
            (Status::Pending, "等待客户回复"),
            (Status::Resolved, "已解决"),
            (Status::Closed, "已关闭"),
            (Status::Archived, "已归档"),
        ];
        for (status, status_zh) in zh {
            let ctx = minijinja::context! {
                status => status.as_str(),
                status_zh => status_zh,
                ..base.clone()
            };
            out.push(("status_change", ctx));
        }
        out
    }

    /// Columns a line takes in a fixed-width font: CJK (and, in Chinese text, the
    /// ambiguous punctuation such as “”) counts 2.
    fn columns(line: &str, language: Language) -> usize {
        use unicode_width::UnicodeWidthStr as _;
        match language {
            Language::En => line.width(),
            Language::ZhCn => line.width_cjk(),
        }
    }

    #[test]
    fn customer_mail_is_wrapped_at_72_columns() {
        let templates = Templates::load(None).unwrap();
        let mut checked = 0;
        for language in Language::ALL {
            for (name, ctx) in typical_contexts(*language) {
                let (_, body) = templates.render(*language, name, ctx).unwrap();
                for line in body.lines() {
                    // A one-click rating line holds its whole link; a link is never cut.
                    if line.contains("mailto:") || line.contains("://") {
                        continue;
                    }
                    assert!(
                        columns(line, *language) <= 72,
                        "{}/{name}: {} columns:\n{line}\n\n{body}",
                        language.as_str(),
                        columns(line, *language)
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked} lines checked");
    }

    #[test]
    fn alert_mail_says_what_happened_and_what_to_do() {
        let templates = Templates::load(None).unwrap();
        let mut subjects = Vec::new();
        for language in Language::ALL {
            for (kind, advice) in [
                ("login-failed", "password"),
                ("login-failed", "login"),
                ("not-syncing", "server"),
                ("token-expiring", "login"),
            ] {
                for recovered in [false, true] {
                    let ctx = minijinja::context! {
                        kind => kind,
                        advice => advice,
                        recovered => recovered,
                        since => "2026-11-25 12:00 UTC",
                        reason => "LOGIN refused",
                        ..sample_context()
                    };
                    let (subject, body) = templates.render(*language, "alert", ctx).unwrap();
                    assert!(subject.starts_with("[postdesk] "), "{subject}");
                    assert!(body.contains("support@example.com"), "{body}");
                    assert!(body.contains("LOGIN refused"), "{body}");
                    assert!(body.contains("2026-11-25 12:00 UTC"), "{body}");
                    if !recovered {
                        assert!(body.contains("postdesk status"), "{body}");
                        assert!(body.contains("postdesk check --connect"), "{body}");
                    }
                    if !recovered && advice == "login" {
                        assert!(body.contains("`postdesk login support`"), "{body}");
                    }
                    for line in body.lines() {
                        assert!(columns(line, *language) <= 72, "{line}\n\n{body}");
                    }
                    subjects.push(subject);
                }
            }
        }
        assert_eq!(
            subjects[..4],
            [
                "[postdesk] ALARM: mailbox support cannot log in",
                "[postdesk] RECOVERED: mailbox support is fetching again",
                "[postdesk] ALARM: mailbox support cannot log in",
                "[postdesk] RECOVERED: mailbox support is fetching again",
            ]
        );
        assert_eq!(
            subjects[6],
            "[postdesk] WARNING: the login of mailbox support expires 2026-12-09 12:00 UTC"
        );
    }

    /// The mails an agent may reply to: each starts its body with the relay marker of its
    /// language, which `agent::quote::cut_answer` cuts at.
    const TO_AGENTS: [&str; 5] = [
        "agent_notification",
        "command_result",
        "command_refused",
        "sla_warning",
        "sla_breach",
    ];

    #[test]
    fn mails_to_agents_start_with_the_relay_marker() {
        let templates = Templates::load(None).unwrap();
        for lang in Language::ALL {
            for name in TO_AGENTS {
                let (_, body) = templates.render(*lang, name, sample_context()).unwrap();
                assert_eq!(
                    body.lines().next(),
                    Some(crate::agent::quote::marker(*lang)),
                    "{}/{name}",
                    lang.as_str()
                );
            }
        }
    }

    /// Header-block labels too common in answers to refuse (`agent::quote::leaks_relay`
    /// does not look for them).
    const GENERIC_LABELS: [&str; 2] = ["Attached:", "附件："];

    #[test]
    fn relay_lines_are_all_caught() {
        use crate::agent::quote::leaks_relay;
        let templates = Templates::load(None).unwrap();
        let ctx = minijinja::context! {
            sla_due => "2026-11-25 17:00 CET",
            assignee => (),
            withheld => vec!["big.zip"],
            suggested => "queue billing (0.91), priority high (0.78)",
            ..sample_context()
        };
        for lang in Language::ALL {
            let (_, body) = templates
                .render(*lang, "agent_notification", ctx.clone())
                .unwrap();
            let lines: Vec<&str> = body.lines().collect();
            let rules: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].starts_with("-----"))
                .collect();
            assert_eq!(rules.len(), 2, "{body}");
            let header = &lines[1..rules[0]];
            let footer = &lines[rules[1] + 1..];
            assert!(header.len() >= 6 && footer.len() >= 3, "{body}");
            for line in header.iter().chain(footer) {
                if line.trim().is_empty() || GENERIC_LABELS.iter().any(|l| line.starts_with(l)) {
                    continue;
                }
                assert!(
                    leaks_relay(line).is_some(),
                    "{}: leaks_relay misses {line:?}",
                    lang.as_str()
                );
                assert!(leaks_relay(&format!("> {line}")).is_some(), "{line:?}");
            }
            let without_marker = lines[1..].join("\n");
            assert!(leaks_relay(&without_marker).is_some());
            assert!(leaks_relay(&body).unwrap().starts_with("the relay marker"));
        }
    }

    #[test]
    fn override_with_bad_template_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/acknowledgement.txt"),
            "Subject: {{ tag \n\nx",
        )
        .unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.starts_with("template en/acknowledgement.txt:"), "{err}");
    }
}
