//! The systemd unit (`systemd/postdesk.service`, `.sysusers`, `.tmpfiles`) and the
//! daemon's side of it (`postdesk::service`).
//!
//! The machine needs systemd's tools (Debian package `systemd`), not systemd as PID 1:
//! `systemd-analyze verify` and `security --offline=true` read files, and
//! `systemd-sysusers`/`systemd-tmpfiles --root` work on a scratch root. The notify
//! protocol is checked the way systemd sees it: a datagram socket in `NOTIFY_SOCKET`,
//! a real `postdesk run` against the test mail stack.
//!
//! Two tests depend on the machine, and say so with `ignored` rather than passing without
//! checking: the owners tmpfiles sets need root (cfg `postdesk_root`), and the stderr
//! fallback cannot be seen where journald runs (cfg `postdesk_journald`); `build.rs` sets
//! both, and each test checks its condition again when it runs.

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Instance, Setup};

/// The highest `systemd-analyze security` exposure the issue allows (lower is better).
const MAX_EXPOSURE: f64 = 2.0;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs a systemd tool; a missing tool fails with the package to install.
fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install the Debian package systemd")
        })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `Key=value` lines of the unit, every value of a repeated key in order.
fn directives(unit: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            map.entry(k.trim().to_owned())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    map
}

fn one<'a>(d: &'a HashMap<String, Vec<String>>, key: &str) -> &'a str {
    match d.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{key}: expected one value, found {other:?}"),
    }
}

/// The unit with ExecStart pointing at the binary cargo built (verify insists that the
/// program exists, and /usr/bin/postdesk is not installed on a test machine), in a fresh
/// directory under its own name.
fn unit_for_verify() -> (tempfile::TempDir, PathBuf) {
    let unit = read("postdesk.service");
    assert!(
        unit.contains("\nExecStart=/usr/bin/postdesk "),
        "ExecStart must run /usr/bin/postdesk (README's install step)"
    );
    let unit = unit.replace(
        "\nExecStart=/usr/bin/postdesk ",
        &format!("\nExecStart={} ", env!("CARGO_BIN_EXE_postdesk")),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postdesk.service");
    std::fs::write(&path, unit).unwrap();
    (dir, path)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (_dir, path) = unit_for_verify();
    let out = tool(
        "systemd-analyze",
        &["verify", "--man=no", path.to_str().unwrap()],
    );
    // verify exits 0 on unknown keys and bad values (it ignores them with a warning), so
    // any output at all is a failure.
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn exec_start_arguments_parse() {
    let d = directives(&read("postdesk.service"));
    let exec = one(&d, "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/postdesk"));
    let args: Vec<&str> = words.collect();
    assert_eq!(
        args,
        ["--config", "/etc/postdesk/postdesk.toml", "run"],
        "ExecStart"
    );
    // clap accepts them: `run --help` exits 0 without reading the configuration.
    let out = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(one(&d, "ExecReload"), "/bin/kill -HUP $MAINPID");
}

#[test]
fn unit_security_exposure_is_at_most_2() {
    let unit = repo_file("postdesk.service");
    // --threshold is in tenths: exit status 1 above 2.0.
    let out = tool(
        "systemd-analyze",
        &[
            "security",
            "--offline=true",
            "--no-pager",
            "--threshold=20",
            unit.to_str().unwrap(),
        ],
    );
    let table = text(&out.stdout);
    let score: f64 = table
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for postdesk.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no overall exposure in the output:\n{table}{}",
                text(&out.stderr)
            )
        });
    eprintln!("systemd-analyze security: {score}");
    assert!(
        score <= MAX_EXPOSURE && out.status.success(),
        "exposure {score} > {MAX_EXPOSURE} ({}):\n{table}{}",
        out.status,
        text(&out.stderr)
    );
}

/// The unit, sysusers and tmpfiles must name the same user, directories and modes: a
/// mismatch makes systemd fix the mode at every start and tmpfiles undo it at boot.
#[test]
fn unit_sysusers_and_tmpfiles_agree() {
    let d = directives(&read("postdesk.service"));
    let user = one(&d, "User");
    assert_eq!(one(&d, "Group"), user);
    assert!(
        !d.contains_key("DynamicUser"),
        "the database needs a stable owner"
    );

    let sysusers: Vec<Vec<String>> = fields(&read("postdesk.sysusers"));
    let u = sysusers
        .iter()
        .find(|f| f[0] == "u")
        .expect("a `u` line in postdesk.sysusers");
    assert_eq!(u[1], user, "sysusers user");
    assert_eq!(u.get(4).map(String::as_str), Some("/var/lib/postdesk"));

    let tmpfiles = fields(&read("postdesk.tmpfiles"));
    let line = |path: &str| {
        tmpfiles
            .iter()
            .find(|f| f[0] == "d" && f[1] == path)
            .unwrap_or_else(|| panic!("no `d {path}` line in postdesk.tmpfiles"))
            .clone()
    };
    let state = line("/var/lib/postdesk");
    assert_eq!(one(&d, "StateDirectory"), "postdesk");
    assert_eq!(state[2], one(&d, "StateDirectoryMode"), "state dir mode");
    assert_eq!((state[3].as_str(), state[4].as_str()), (user, user));

    let config = line("/etc/postdesk");
    assert_eq!(one(&d, "ConfigurationDirectory"), "postdesk");
    assert_eq!(
        config[2],
        one(&d, "ConfigurationDirectoryMode"),
        "config dir mode"
    );
    assert_eq!((config[3].as_str(), config[4].as_str()), ("root", user));
    assert!(one(&d, "ExecStart").contains(" /etc/postdesk/postdesk.toml "));
}

/// The outer walls against a message that still costs too much (issue 12): memory,
/// threads and open files are bounded, and memory is throttled before it is killed.
#[test]
fn unit_bounds_memory_tasks_and_files() {
    let d = directives(&read("postdesk.service"));
    let bytes = |key: &str| {
        let v = one(&d, key);
        let (n, unit) = v.split_at(v.len() - 1);
        let n: u64 = n
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v}: a number and K/M/G"));
        n * match unit {
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            _ => panic!("{key}={v}: a number and K/M/G"),
        }
    };
    let (high, max) = (bytes("MemoryHigh"), bytes("MemoryMax"));
    assert!(
        high < max,
        "MemoryHigh ({high}) throttles before MemoryMax ({max}) kills"
    );
    // Two batches of the default fetch_batch_bytes (16 MiB), each held three times over,
    // and a message of the default max_message_bytes (32 MiB) parsed.
    assert!(
        high >= (6 * 16 + 3 * 32) << 20,
        "MemoryHigh leaves room for the default limits"
    );
    let tasks: u32 = one(&d, "TasksMax").parse().expect("TasksMax is a number");
    assert!((32..=1024).contains(&tasks), "TasksMax={tasks}");
    let files: u32 = one(&d, "LimitNOFILE")
        .parse()
        .expect("LimitNOFILE is a number");
    assert!((1024..=65536).contains(&files), "LimitNOFILE={files}");
}

/// Non-comment lines of a sysusers/tmpfiles file, split into fields (a quoted GECOS is
/// one field).
fn fields(file: &str) -> Vec<Vec<String>> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut out = Vec::new();
            let mut rest = l;
            while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
                rest = &rest[start..];
                let end = if let Some(quoted) = rest.strip_prefix('"') {
                    quoted.find('"').map_or(rest.len(), |i| i + 2)
                } else {
                    rest.find(char::is_whitespace).unwrap_or(rest.len())
                };
                out.push(rest[..end].trim_matches('"').to_owned());
                rest = &rest[end..];
            }
            out
        })
        .collect()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A scratch root after `systemd-sysusers` and `systemd-tmpfiles --create`.
struct ScratchRoot {
    dir: tempfile::TempDir,
    uid: u32,
    gid: u32,
    /// What `systemd-tmpfiles` said; it fails where it may not chown.
    tmpfiles: Output,
}

/// Applies sysusers and tmpfiles to a scratch root and checks what works for any user:
/// the user exists as a system user, and tmpfiles reads its file without a syntax error.
fn set_up_scratch_root() -> ScratchRoot {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc/postdesk")).unwrap();
    for f in ["postdesk.toml", "support.password"] {
        let p = r.join("etc/postdesk").join(f);
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let root_arg = format!("--root={}", r.display());

    let out = tool(
        "systemd-sysusers",
        &[&root_arg, repo_file("postdesk.sysusers").to_str().unwrap()],
    );
    assert!(out.status.success(), "sysusers: {}", text(&out.stderr));
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let entry: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("postdesk:"))
        .unwrap_or_else(|| panic!("no postdesk user in\n{passwd}"))
        .split(':')
        .collect();
    let (uid, gid): (u32, u32) = (entry[2].parse().unwrap(), entry[3].parse().unwrap());
    assert!(uid < 1000, "a system user, got uid {uid}");
    assert_eq!(entry[5], "/var/lib/postdesk");
    assert!(entry[6].ends_with("nologin"), "shell {}", entry[6]);

    let tmpfiles = repo_file("postdesk.tmpfiles");
    let out = tool(
        "systemd-tmpfiles",
        &[&root_arg, "--create", tmpfiles.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    // A syntax error names the file and the line.
    assert!(
        !stderr.contains(&format!("{}:", tmpfiles.display())),
        "tmpfiles: {stderr}"
    );
    ScratchRoot {
        dir: root,
        uid,
        gid,
        tmpfiles: out,
    }
}

/// sysusers and tmpfiles applied to a scratch root: the user exists and tmpfiles accepts
/// its file. Runs as any user; the modes and owners are the next test's (root only).
#[test]
fn sysusers_and_tmpfiles_set_up_a_root() {
    set_up_scratch_root();
}

/// The directories have their modes and owners, and a password file left world-readable
/// is fixed. Only root may chown, so `build.rs` sets `postdesk_root` when it runs as root.
#[test]
#[cfg_attr(
    not(postdesk_root),
    ignore = "needs root: systemd-tmpfiles cannot chown the scratch root otherwise"
)]
fn tmpfiles_sets_modes_and_owners_as_root() {
    assert!(
        is_root(),
        "only root can check the owners{}",
        if cfg!(postdesk_root) {
            ", and this was built as root but runs as another user: `touch build.rs` and \
             run again, so that it is ignored"
        } else {
            ""
        }
    );
    let ScratchRoot {
        dir: root,
        uid,
        gid,
        tmpfiles: out,
    } = set_up_scratch_root();
    let r = root.path();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "tmpfiles: {stderr}");
    for (path, mode, owner) in [
        ("etc/postdesk", 0o750, (0, gid)),
        ("etc/postdesk/postdesk.toml", 0o640, (0, gid)),
        ("etc/postdesk/support.password", 0o640, (0, gid)),
        ("var/lib/postdesk", 0o700, (uid, gid)),
    ] {
        let m = std::fs::metadata(r.join(path)).unwrap();
        assert_eq!(m.mode() & 0o7777, mode, "/{path} mode {:o}", m.mode());
        assert_eq!((m.uid(), m.gid()), owner, "/{path} owner");
    }
}

// ---------------------------------------------------------------- the notify protocol

/// What systemd would hear: a datagram socket at `NOTIFY_SOCKET`.
struct Listener {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sock: UnixDatagram,
    /// Every line received so far, in order.
    lines: Vec<String>,
}

impl Listener {
    fn new() -> Listener {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Listener {
            _dir: dir,
            path,
            sock,
            lines: Vec::new(),
        }
    }

    /// Waits for `line` after the first `from` lines; returns its index.
    fn expect(&mut self, line: &str, from: usize, timeout: Duration, daemon: &mut Daemon) -> usize {
        let start = Instant::now();
        loop {
            if let Some(i) = self.lines[from.min(self.lines.len())..]
                .iter()
                .position(|l| l == line)
            {
                return from + i;
            }
            if start.elapsed() > timeout {
                panic!(
                    "no {line} within {timeout:?}; heard {:?}\nstderr:\n{}",
                    self.lines,
                    daemon.stop_and_stderr()
                );
            }
            if let Some(status) = daemon.0.try_wait().unwrap() {
                panic!(
                    "postdesk exited ({status}) before {line}; heard {:?}\nstderr:\n{}",
                    self.lines,
                    daemon.stop_and_stderr()
                );
            }
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.lines
                    .extend(text(&buf[..n]).lines().map(str::to_owned));
            }
        }
    }
}

/// `postdesk run` as systemd would start it; SIGKILLed on drop if still running.
struct Daemon(Child);

impl Daemon {
    /// The command systemd would run, talking to `notify`; tests add to it.
    fn command(instance: &Instance, notify: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postdesk"));
        cmd.arg("--config")
            .arg(&instance.config_path)
            .arg("run")
            .env("NOTIFY_SOCKET", notify)
            .env("RUST_LOG", "info")
            .env_remove("WATCHDOG_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    fn start(mut cmd: Command) -> Daemon {
        Daemon(cmd.spawn().expect("start postdesk"))
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.0.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for a clean exit (the unit's TimeoutStopSec is 90 s; tests wait 30).
    fn wait_exit(&mut self) -> String {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.0.try_wait().unwrap() {
                let stderr = self.stderr();
                assert!(status.success(), "postdesk exited {status}:\n{stderr}");
                return stderr;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "postdesk still running 30 s after SIGTERM:\n{}",
            self.stop_and_stderr()
        );
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    fn stop_and_stderr(&mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        self.stderr()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const START: Duration = Duration::from_secs(30);

/// Where journald listens; `build.rs` looks for it too.
const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// READY=1 after the first sync, WATCHDOG=1 while running, STOPPING=1 at SIGTERM, then
/// a clean exit: what `Type=notify` and `WatchdogSec=` rely on.
#[test]
fn run_notifies_ready_watchdog_and_stopping() {
    let instance = Instance::new(Setup {
        mailboxes: 2,
        ..Setup::default()
    });
    let mut listener = Listener::new();
    let mut cmd = Daemon::command(&instance, &listener.path);
    // WatchdogSec=2s: pings every second.
    cmd.env("WATCHDOG_USEC", "2000000");
    let mut daemon = Daemon::start(cmd);

    let ready = listener.expect("READY=1", 0, START, &mut daemon);
    // Every mailbox's first sync has committed by READY.
    let names = ["mb0".to_owned(), "mb1".to_owned()];
    let status = instance.reader().status(&names).unwrap();
    assert!(
        status.mailboxes.iter().all(|m| m.last_sync_at.is_some()),
        "READY before every mailbox synced: {:?}",
        status.mailboxes
    );
    listener.expect("WATCHDOG=1", ready, Duration::from_secs(5), &mut daemon);

    daemon.signal("TERM");
    let stopping = listener.expect("STOPPING=1", ready, Duration::from_secs(10), &mut daemon);
    let stderr = daemon.wait_exit();
    assert!(
        !listener.lines[stopping..].contains(&"READY=1".to_owned()),
        "READY after STOPPING: {:?}",
        listener.lines
    );
    assert!(stderr.contains("postdesk running"), "stderr:\n{stderr}");
    assert!(!stderr.contains("cannot notify"), "stderr:\n{stderr}");
}

/// SIGHUP (the unit's ExecReload): RELOADING=1 with MONOTONIC_USEC, then READY=1 again
/// once the configuration is reloaded.
#[test]
fn sighup_notifies_reloading_then_ready() {
    let instance = Instance::new(Setup::default());
    let mut listener = Listener::new();
    let mut daemon = Daemon::start(Daemon::command(&instance, &listener.path));
    let ready = listener.expect("READY=1", 0, START, &mut daemon);

    daemon.signal("HUP");
    let reloading = listener.expect(
        "RELOADING=1",
        ready + 1,
        Duration::from_secs(10),
        &mut daemon,
    );
    assert!(
        listener
            .lines
            .get(reloading + 1)
            .is_some_and(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 without MONOTONIC_USEC: {:?}",
        listener.lines
    );
    listener.expect("READY=1", reloading, Duration::from_secs(10), &mut daemon);

    daemon.signal("TERM");
    listener.expect(
        "STOPPING=1",
        reloading,
        Duration::from_secs(10),
        &mut daemon,
    );
    daemon.wait_exit();
}

/// With stderr connected to "the journal" (JOURNAL_STREAM naming stderr's device and
/// inode) but no journald listening, as on this test machine, logs still reach stderr,
/// plain (no colours, no timestamps: journald adds its own), and say why.
///
/// Where journald runs, logs go to the journal and there is nothing to check on stderr:
/// `build.rs` sets `postdesk_journald` when the socket exists, and the test is ignored.
#[test]
#[cfg_attr(
    postdesk_journald,
    ignore = "journald is running here: logs go to the journal, nothing to check on stderr"
)]
fn logs_fall_back_to_stderr_when_journald_does_not_answer() {
    assert!(
        !Path::new(JOURNALD_SOCKET).exists(),
        "journald listens at {JOURNALD_SOCKET}, so logs go to the journal{}",
        if cfg!(postdesk_journald) {
            ""
        } else {
            ", and it did not when this was built: `touch build.rs` and run again, so that \
             this test is ignored"
        }
    );
    let instance = Instance::new(Setup::default());
    let log = instance.dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let m = file.metadata().unwrap();
    let stream = format!("{}:{}", m.dev(), m.ino());
    let mut listener = Listener::new();
    let mut cmd = Daemon::command(&instance, &listener.path);
    cmd.env("JOURNAL_STREAM", &stream)
        .env_remove("NO_COLOR")
        .stderr(file);
    let mut daemon = Daemon::start(cmd);
    listener.expect("READY=1", 0, START, &mut daemon);
    daemon.signal("TERM");
    daemon.wait_exit();

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("journald socket not answering"), "{logged}");
    assert!(logged.contains("postdesk running"), "{logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "escape codes in the journal:\n{logged}"
    );
    let first = logged.lines().next().unwrap_or_default();
    assert!(
        !first.starts_with(|c: char| c.is_ascii_digit()),
        "a timestamp in the journal: {first}"
    );
}
