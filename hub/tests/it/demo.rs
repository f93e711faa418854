//! The README demo: the seed's worked example settles on chain at the seed's figures.

#[tokio::test]
async fn seed_worked_example_settles_at_the_seeds_figures() -> anyhow::Result<()> {
    let mut out = Vec::new();
    let report = ingrid_hub::demo::run_on_fresh_devnet(&mut out).await?;
    report.check()?;
    let printed = String::from_utf8(out)?;
    assert!(printed.contains("X (Alice, Ingrid) = (5, 1)"), "{printed}");
    assert!(printed.contains("Y (Ingrid, Bob) = (6, 3)"), "{printed}");
    Ok(())
}
