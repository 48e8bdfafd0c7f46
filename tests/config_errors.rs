//! `postdesk check` names the file, the line and the key of a bad configuration.

mod common;

use std::process::Command;

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "test").unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["--config", path.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(path.to_str().unwrap(), "FILE");
    (out.status.success(), stderr)
}

const GOOD: &str = r#"data_dir = "data"
hostname = "helpdesk.example.test"

[smtp]
host = "127.0.0.1"
port = 10025

[[mailbox]]
name = "support"
address = "support@example.test"
tag = "ACME"
host = "127.0.0.1"
port = 10143
password_file = "password"
poll_interval = "60s"
"#;

#[test]
fn good_config_passes_check() {
    let (ok, err) = check(GOOD);
    assert!(ok, "{err}");
}

#[test]
fn unknown_key_fails_with_file_line_and_key() {
    let (ok, err) =
        check(&GOOD.replace("tag = \"ACME\"", "tag = \"ACME\"\npoll_intervall = \"5s\""));
    assert!(!ok);
    assert!(
        err.contains("FILE:12: poll_intervall: unknown field `poll_intervall`"),
        "{err}"
    );
}

#[test]
fn bad_duration_fails_with_file_line_and_key() {
    let (ok, err) = check(&GOOD.replace("\"60s\"", "\"one minute\""));
    assert!(!ok);
    assert!(
        err.contains("FILE:15: poll_interval: invalid duration \"one minute\""),
        "{err}"
    );
}

#[test]
fn password_in_config_is_refused() {
    let (ok, err) = check(&GOOD.replace("password_file = \"password\"", "password = \"hunter2\""));
    assert!(!ok);
    assert!(err.contains("FILE:14: password: unknown field"), "{err}");
    assert!(!err.contains("hunter2"), "the secret is not echoed: {err}");
}

#[test]
fn example_config_is_valid_once_its_secrets_exist() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/postdesk.example.toml"
    ))
    .unwrap();
    let text = example.replace("/etc/postdesk/support.password", secret.to_str().unwrap());
    let path = dir.path().join("example.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["--config", path.to_str().unwrap(), "check"])
        .env("POSTDESK_KEFU_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dev_config_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml"),
            "check",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
