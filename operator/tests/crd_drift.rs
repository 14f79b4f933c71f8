//! `crds/skyfleet.yaml` is exactly what `skyfleet crd` prints, so the committed CRDs, the Helm
//! chart and the code never disagree.

#[test]
fn committed_crds_match_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/skyfleet.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = skyfleet::cli::crd::render().expect("CRDs render");
    assert!(
        committed == generated,
        "{} is out of date: run `cargo run -p skyfleet -- crd > crds/skyfleet.yaml`",
        path.display()
    );
}
