//! The `rookery` binary itself: settings precedence and SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Running {
    child: Child,
    url: String,
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rookery"));
    command
        .args(args)
        .env_remove("ROOKERY_MAX_MESSAGE_SIZE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("rookery starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("rookery listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Running { child, url }
}

async fn max_message_size(running: &Running) -> u64 {
    let config: Value = reqwest::get(format!("{}/config.json", running.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    config["max_message_size"].as_u64().unwrap()
}

fn stop(mut running: Running) -> Duration {
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = running.child.wait().unwrap();
    assert!(status.success(), "exits cleanly on SIGTERM: {status}");
    started.elapsed()
}

#[tokio::test]
async fn settings_come_from_the_command_line_then_env_then_file() {
    let dir = std::env::temp_dir().join(format!("rookery-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rookery.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmax_message_size = 2048\n").unwrap();
    let data = dir.join("data");
    let common = [
        "serve",
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];

    let from_file = start(&common, &[]);
    assert_eq!(max_message_size(&from_file).await, 2048);
    stop(from_file);

    let from_env = start(&common, &[("ROOKERY_MAX_MESSAGE_SIZE", "4096")]);
    assert_eq!(max_message_size(&from_env).await, 4096);
    stop(from_env);

    let mut args = common.to_vec();
    args.extend(["--max-message-size", "8192"]);
    let from_cli = start(&args, &[("ROOKERY_MAX_MESSAGE_SIZE", "4096")]);
    assert_eq!(max_message_size(&from_cli).await, 8192);
    let took = stop(from_cli);
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert!(data.is_dir(), "the data dir is created");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_config_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("rookery-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rookery.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid config file") && stderr.contains("lisen"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn private_notes_with_a_public_list_refuse_to_start() {
    let dir = std::env::temp_dir().join(format!("rookery-privnotes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rookery.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\n[namespaces.notes]\nkind = \"document\"\nprivate = true\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .args(["--data-dir", dir.join("data").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A server that starts anyway must fail the test, not hang it.
    let pid = child.id();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited.send(child.wait_with_output()));
    let Ok(output) = exit.recv_timeout(Duration::from_secs(10)) else {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("the server started with private notes and a public list");
    };
    let output = output.unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "never listened");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[namespaces.notes] is private but [namespaces.notes_list] is not"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn token_mints_what_the_server_accepts() {
    let output = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .args([
            "token",
            "--sub",
            "alice",
            "--channel",
            "team:*",
            "--ttl",
            "60",
        ])
        .env("ROOKERY_JWT_SECRET", crate::support::JWT_SECRET)
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap();
    let verifier = rookery::auth::Verifier::hs256(crate::support::JWT_SECRET.as_bytes()).unwrap();
    let claims = verifier.verify_connection(token.trim()).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.channels, ["team:*"]);
    assert!(claims.exp.is_some());
}

#[test]
fn version_names_the_revision_and_the_features() {
    let output = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    let features = if cfg!(feature = "embed") {
        "embed"
    } else {
        "none"
    };
    let rest = line
        .trim()
        .strip_prefix(&format!("rookery {} (git ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(&format!(", features: {features})")))
        .unwrap_or_else(|| panic!("unexpected version line {line:?}"));
    let in_a_checkout = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|output| output.status.success());
    if in_a_checkout {
        assert_eq!(rest.len(), 12, "{rest:?}");
        // HEAD may have moved on since the build; the commit must exist.
        let known = Command::new("git")
            .args(["cat-file", "-e", &format!("{rest}^{{commit}}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(known.success(), "{rest} is not a commit here");
    } else {
        assert_eq!(rest, "unknown");
    }
}
