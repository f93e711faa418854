//! The API fuzzed from its own OpenAPI document (Schemathesis, pinned in
//! `hub/tests/fuzz/requirements.txt`, installed by `scripts/setup.sh`) against a real hub,
//! Postgres and anvil: valid and invalid requests to every operation, as a client with a
//! funded channel and as the operator. Every answer must be a documented status with the
//! documented content type, and never a 5xx.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{Env, OPERATOR_TOKEN, open_basic};

fn schemathesis() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/.venv/bin/st")
}

/// Runs Schemathesis on the operations `filter` selects, with `token`; fails with its report.
async fn fuzz(url: &str, token: &str, filter: &[&str], report: &std::path::Path) -> anyhow::Result<()> {
    let st = schemathesis();
    anyhow::ensure!(st.exists(), "{} is missing: run scripts/setup.sh", st.display());
    std::fs::create_dir_all(report)?;
    let mut command = tokio::process::Command::new(&st);
    // Schemathesis keeps state in its working directory: the test's temporary one.
    command
        .current_dir(report)
        .args(["run", &format!("{url}/openapi.json"), "--url", url])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance"])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "25", "--seed", "1"])
        .args(["--generation-database", "none", "--workers", "2", "--request-timeout", "40", "--no-color"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .arg("--report-dir")
        .arg(report)
        .args(filter)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(600), command.output()).await??;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(output.status.success(), "schemathesis found failures:\n{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_only_documented_statuses_and_never_5xx() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let alice = env.wallet(&url, 1).await?;
    open_basic(&alice, env.eth().holder, 1, 1).await?;
    let token = alice.hub().token().unwrap_or_default().to_string();
    let report = env.dir.path().join("fuzz-report");
    fuzz(&url, &token, &["--exclude-tag", "admin"], &report).await?;
    fuzz(&url, OPERATOR_TOKEN, &["--include-tag", "admin"], &report).await?;
    hub.stop().await;
    Ok(())
}
