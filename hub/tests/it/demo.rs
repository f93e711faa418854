//! The README demo: the nanoservice sale through the hub, and the seed's worked example on
//! chain, both at the seed's figures.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanoservice_sale_through_the_hub() -> anyhow::Result<()> {
    let mut out = Vec::new();
    let report = ingrid_hub::sale::run(&mut out).await?;
    report.check()?;
    let printed = String::from_utf8(out)?;
    assert_eq!(printed.matches("microtransaction").count(), 10, "{printed}");
    assert!(printed.contains("Buyer = (0.9, 0.1)   Seller = (1.1, 0.9)"), "{printed}");
    assert!(
        printed.contains("after 100 nanoservices: Buyer (Buyer, hub) = (0, 1)   Seller (Seller, hub) = (2, 0)"),
        "{printed}"
    );
    assert!(printed.contains(", 0 while paying"), "{printed}");
    assert!(printed.contains("hub requests while playing: 0"), "{printed}");
    assert!(printed.contains("the hub holds 1 ETH before and after"), "{printed}");
    assert!(printed.contains("8 chunks delivered and checked against the manifest"), "{printed}");
    assert!(printed.contains("refused (payment refused (422)"), "{printed}");
    assert!(printed.contains("Carol = (0.42, 0.08)   Dave = (0.58, 0.42)   hub requests while buying: 0"), "{printed}");
    Ok(())
}

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
