//! The `dashboard` binary never prints a secret: not in `--help` (which shows the
//! environment's values of the other variables), not in its logs.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRETS: [(&str, &str); 5] = [
    ("AMQP_CONNECTION", "amqp://mq:hunter1@127.0.0.1:1/%2f"),
    ("RABBITMQ_PASSWORD", "hunter2"),
    ("POSTGRES_PASSWORD", "hunter3"),
    ("NEO4J_PASSWORD", "hunter4"),
    ("REDIS_URL", "redis://:hunter5@127.0.0.1:1/0"),
];

fn dashboard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dashboard"));
    c.envs(SECRETS)
        .env("RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:1");
    c
}

#[test]
fn help_and_logs_hide_secrets() {
    let help = dashboard()
        .arg("--help")
        .output()
        .expect("dashboard --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:1"),
        "{help}"
    );
    assert!(!help.contains("hunter"), "{help}");

    // Started against nothing (every source down): its logs name the addresses, never a
    // password.
    let mut child = dashboard()
        .args([
            "--health-port",
            "0",
            "--health-bind",
            "127.0.0.1",
            "--log-level",
            "DEBUG",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dashboard starts");
    std::thread::sleep(Duration::from_secs(3));
    child.kill().expect("kill");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("read logs");
    child.wait().expect("wait");
    assert!(logs.contains("Dashboard starting"), "{logs}");
    assert!(logs.contains("redis://:***@127.0.0.1:1/0"), "{logs}");
    assert!(!logs.contains("hunter"), "{logs}");
}
