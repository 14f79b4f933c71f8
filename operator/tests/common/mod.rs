//! Fixtures shared by the CLI tests.

/// Manifests of two providers, each with an on-demand and a cheaper Spot pool; the
/// on-demand pools hold `od_cpu` cores each (`None`: no limit); the workload `web` tolerates
/// one provider and `spot` (`Ignore` or `Tolerate`).
pub fn spot_fleet(spot: &str, od_cpu: Option<&str>) -> String {
    let pool = |name: &str, provider: &str, price: f64, kind: &str, cpu: Option<&str>| {
        let capacity = cpu.map_or(String::new(), |c| format!("\n  capacity: {{cpu: \"{c}\"}}"));
        format!(
            "apiVersion: skyfleet.io/v1alpha1\nkind: CloudPool\nmetadata: {{name: {name}}}\nspec:\n  provider: {provider}\n  region: r1\n  pricing: {{cpuPerHour: {price}, memoryGiBPerHour: 0.004, capacityType: {kind}}}{capacity}\n---\n"
        )
    };
    let mut text = String::new();
    text += &pool("aws-od", "aws", 0.040, "OnDemand", od_cpu);
    text += &pool("aws-spot", "aws", 0.013, "Spot", None);
    text += &pool("gcp-od", "gcp", 0.045, "OnDemand", od_cpu);
    text += &pool("gcp-spot", "gcp", 0.012, "Spot", None);
    text += &format!(
        "apiVersion: skyfleet.io/v1alpha1
kind: MultiCloudWorkload
metadata: {{name: web}}
spec:
  replicas: {{min: 2, max: 40}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: app, image: web:1, resources: {{requests: {{cpu: 500m, memory: 512Mi}}}}}}
  placement:
    redundancy: {{tolerate: 1, domain: Provider, spot: {spot}}}
"
    );
    text
}
