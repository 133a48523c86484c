//! `ordo run` refuses bad configuration with one line naming the problem
//! and a non-zero exit, before it starts anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

fn testnet(dir: &Path) {
    let ok = Command::new(support::ordo())
        .args(["testnet", "--nodes", "4", "--base-port", "0", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(ok.status.success());
}

/// Runs `ordo run --check --config <path>` and returns (success, stderr).
fn check(config: &Path) -> (bool, String) {
    let out = Command::new(support::ordo())
        .args(["run", "--check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn each_bad_config_gets_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    testnet(dir.path());
    let good = dir.path().join("node-0.toml");
    let (ok, _) = check(&good);
    assert!(ok, "the generated config must be valid");

    // (name, how to break a copy of the config, text the error must contain)
    type Breaker = fn(&Path, &Path);
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "missing key file",
            |_, c| edit(c, "node-0.key", "nope.key"),
            "nope.key",
        ),
        (
            "own key not in committee",
            |d, c| {
                let other = d.join("stranger.key");
                let status = Command::new(support::ordo())
                    .args(["keygen", "--out"])
                    .arg(&other)
                    .output()
                    .unwrap();
                assert!(status.status.success());
                edit(c, "node-0.key", "stranger.key");
            },
            "not a member of the committee",
        ),
        (
            "missing committee file",
            |_, c| edit(c, "committee.toml", "gone.toml"),
            "gone.toml",
        ),
        (
            "bad listen address",
            |_, c| {
                let text = std::fs::read_to_string(c).unwrap();
                std::fs::write(c, format!("listen = \"not-an-address\"\n{text}")).unwrap();
            },
            "listen",
        ),
        (
            "unknown field",
            |_, c| {
                let text = std::fs::read_to_string(c).unwrap();
                std::fs::write(c, format!("colour = \"blue\"\n{text}")).unwrap();
            },
            "unknown field `colour`",
        ),
        (
            "malformed TOML",
            |_, c| std::fs::write(c, "key_file = [").unwrap(),
            "node-0.toml",
        ),
        (
            "port in use",
            |_, c| {
                let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let addr = taken.local_addr().unwrap();
                std::mem::forget(taken);
                let text = std::fs::read_to_string(c).unwrap();
                std::fs::write(c, format!("listen = \"{addr}\"\n{text}")).unwrap();
            },
            "cannot listen",
        ),
        (
            "API port in use",
            |_, c| {
                let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = taken.local_addr().unwrap();
                std::mem::forget(taken);
                let text = std::fs::read_to_string(c).unwrap();
                std::fs::write(c, format!("api_listen = \"{addr}\"\n{text}")).unwrap();
            },
            "cannot serve the API",
        ),
        (
            "timeouts out of order",
            |_, c| edit(c, "max_timeout_ms = 30000", "max_timeout_ms = 10"),
            "base_timeout_ms",
        ),
        (
            "bad committee key",
            |d, _| edit(&d.join("committee.toml"), "key = \"", "key = \"zz"),
            "member 0: key",
        ),
        (
            "bad committee address",
            |d, _| {
                edit(
                    &d.join("committee.toml"),
                    "\naddress = \"127.0.0.1:",
                    "\naddress = \"not-an-address:",
                )
            },
            "member 0: address 'not-an-address:",
        ),
        (
            "retention shorter than the dedupe window",
            |_, c| edit(c, "retention_heights = 100000", "retention_heights = 500"),
            "retention_heights (500) must be at least dedupe_window_heights",
        ),
        (
            "an empty dedupe window",
            |_, c| edit(c, "dedupe_window_txs = 4000000", "dedupe_window_txs = 0"),
            "dedupe_window_txs must be at least 1",
        ),
        (
            "datagrams smaller than QUIC allows",
            |_, c| {
                edit(
                    c,
                    "max_udp_payload_bytes = 65527",
                    "max_udp_payload_bytes = 1000",
                )
            },
            "transport: max_udp_payload_bytes must be in 1200..=65527",
        ),
    ];
    let committee = dir.path().join("committee.toml");
    for (name, breaker, expected) in cases {
        let copy = dir.path().join("node-0.toml");
        let original = std::fs::read_to_string(&good).unwrap();
        let original_committee = std::fs::read_to_string(&committee).unwrap();
        breaker(dir.path(), &copy);
        let (ok, stderr) = check(&copy);
        std::fs::write(&good, original).unwrap();
        std::fs::write(&committee, original_committee).unwrap();
        assert!(!ok, "{name}: accepted");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: expected one line, got:\n{stderr}");
        assert!(lines[0].starts_with("error: "), "{name}: {stderr}");
        // Named once: an error is not repeated by its own causes.
        assert_eq!(
            lines[0].matches(expected).count(),
            1,
            "{name}: '{expected}' not in, or repeated in: {stderr}"
        );
    }
    // A missing committee file: the OS error is printed once too.
    let original = std::fs::read_to_string(&good).unwrap();
    edit(&good, "committee.toml", "gone.toml");
    let (ok, stderr) = check(&good);
    std::fs::write(&good, original).unwrap();
    assert!(!ok);
    let os_error = std::fs::read(dir.path().join("gone.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(stderr.trim().matches(&os_error).count(), 1, "{stderr}");
    assert_eq!(stderr.trim().matches("cannot read").count(), 1, "{stderr}");
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let run = |force: bool| {
        let mut cmd = Command::new(support::ordo());
        cmd.args(["keygen", "--out"]).arg(&key);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    assert!(run(false).status.success());
    let second = run(false);
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already exists"));
    assert!(run(true).status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// `--log-format json`: every line on stderr is one JSON object, and the
/// start-up log of `ordo run --check` is among them.
#[test]
fn log_format_json_writes_one_json_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    testnet(dir.path());
    let out = Command::new(support::ordo())
        .args(["--log-format", "json", "run", "--check", "--config"])
        .arg(dir.path().join("node-0.toml"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let valid = events
        .iter()
        .find(|e| e["fields"]["message"] == "configuration valid")
        .unwrap_or_else(|| panic!("no start-up event in:\n{stderr}"));
    assert_eq!(valid["level"], "INFO");
    assert_eq!(valid["fields"]["node"], 0);
}
