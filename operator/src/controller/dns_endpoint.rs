//! Weighted DNS through ExternalDNS: the workload's traffic split as one `DNSEndpoint`
//! (`externaldns.k8s.io/v1alpha1`, ExternalDNS's CRD source) on the management cluster, in
//! the workload's namespace and of its name, with one record per pool that has traffic.
//!
//! Only the few fields skyfleet writes are modelled here; the CRD is ExternalDNS's
//! (`config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml`, pinned in `hack/versions.sh`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::{ApiResource, GroupVersionKind};
use serde::Serialize;

use crate::api::workload::{DnsSpec, TrafficStatus};
use crate::controller::desired::Owner;
use crate::controller::labels;

/// The property ExternalDNS's AWS provider reads a weighted record's weight from; the
/// operator's `--dns-weight-property` default.
pub const DEFAULT_WEIGHT_PROPERTY: &str = "aws/weight";
/// ExternalDNS's API group and version of `DNSEndpoint`.
pub const GROUP: &str = "externaldns.k8s.io";
pub const VERSION: &str = "v1alpha1";

/// The DNSEndpoint kind as the API server serves it.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, "DNSEndpoint"),
        "dnsendpoints",
    )
}

/// One record of the set: a pool's share of the name.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The name users resolve.
    pub dns_name: String,
    /// A, AAAA or CNAME.
    pub record_type: String,
    /// Seconds an answer may be cached.
    #[serde(rename = "recordTTL")]
    pub record_ttl: i64,
    /// The pool's endpoint.
    pub targets: Vec<String>,
    /// The pool: one weighted record per pool under the same name.
    pub set_identifier: String,
    /// The weight, under the provider's property name.
    pub provider_specific: Vec<Property>,
}

/// A provider-specific property of a record.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// e.g. `aws/weight`.
    pub name: String,
    /// The weight in points, as text.
    pub value: String,
}

/// The records for `traffic`: one per pool with a weight above 0 and an endpoint, the
/// weight under `property(pool)`. Pools without an endpoint have nowhere to send users and
/// are left out (returned second, so that it can be said).
pub fn records(
    dns: &DnsSpec,
    traffic: &TrafficStatus,
    property: impl Fn(&str) -> String,
) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut without_endpoint = Vec::new();
    for row in traffic.pools.iter().filter(|r| r.weight > 0) {
        let Some(endpoint) = row.endpoint.clone() else {
            without_endpoint.push(row.name.clone());
            continue;
        };
        records.push(Record {
            dns_name: dns.hostname.clone(),
            record_type: dns.record_type.as_str().to_string(),
            record_ttl: dns.ttl,
            targets: vec![endpoint],
            set_identifier: row.name.clone(),
            provider_specific: vec![Property {
                name: property(&row.name),
                value: row.weight.to_string(),
            }],
        });
    }
    (records, without_endpoint)
}

/// The labels of the workload's DNSEndpoint.
fn dns_labels(owner: &Owner) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        (labels::WORKLOAD_NAME.to_string(), owner.name.clone()),
        (labels::WORKLOAD_UID.to_string(), owner.uid.clone()),
    ])
}

/// Whether the DNSEndpoint with `meta` is this workload's (labels and owner UID).
pub fn is_mine(owner: &Owner, meta: &ObjectMeta) -> bool {
    let labelled = meta.labels.as_ref().is_some_and(|l| {
        dns_labels(owner)
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|x| x == v))
    });
    let owned = meta
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == owner.uid);
    labelled && owned
}

/// The DNSEndpoint to apply: owned by the workload, so the management cluster's garbage
/// collector removes it with the workload.
pub fn desired(owner: &Owner, records: &[Record]) -> serde_json::Value {
    let metadata = ObjectMeta {
        name: Some(owner.name.clone()),
        namespace: Some(owner.namespace.clone()),
        labels: Some(dns_labels(owner)),
        owner_references: Some(vec![OwnerReference {
            api_version: "skyfleet.io/v1alpha1".to_string(),
            kind: "MultiCloudWorkload".to_string(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
            controller: Some(true),
            block_owner_deletion: None,
        }]),
        ..Default::default()
    };
    serde_json::json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": metadata,
        "spec": {"endpoints": records},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::{DnsRecordType, TrafficWeight};

    fn owner() -> Owner {
        Owner {
            namespace: "shop".into(),
            name: "web".into(),
            uid: "u-1".into(),
            installation: "i".into(),
        }
    }

    #[test]
    fn one_weighted_record_per_pool_with_traffic_and_an_endpoint() {
        let dns = DnsSpec {
            hostname: "shop.example.com".into(),
            ttl: 30,
            record_type: DnsRecordType::Cname,
        };
        let row = |name: &str, weight: i32, endpoint: Option<&str>| TrafficWeight {
            name: name.into(),
            weight,
            endpoint: endpoint.map(str::to_string),
        };
        let traffic = TrafficStatus {
            split: String::new(),
            pools: vec![
                row("aws", 60, Some("lb.aws.example.net")),
                row("gcp", 40, None),
                row("azure", 0, Some("lb.azure.example.net")),
            ],
            last_update_time: None,
        };
        let property = |pool: &str| {
            if pool == "aws" {
                "aws/weight".to_string()
            } else {
                "webhook/weight".to_string()
            }
        };
        let (records, missing) = records(&dns, &traffic, property);
        assert_eq!(missing, ["gcp"]);
        assert_eq!(records.len(), 1, "weight 0 and no endpoint are left out");
        let r = &records[0];
        assert_eq!(
            (r.dns_name.as_str(), r.record_type.as_str(), r.record_ttl),
            ("shop.example.com", "CNAME", 30)
        );
        assert_eq!(r.set_identifier, "aws");
        assert_eq!(r.targets, ["lb.aws.example.net"]);
        assert_eq!(
            r.provider_specific,
            [Property {
                name: "aws/weight".into(),
                value: "60".into()
            }]
        );
        let object = desired(&owner(), &records);
        assert_eq!(object["spec"]["endpoints"][0]["recordTTL"], 30);
        assert_eq!(object["spec"]["endpoints"][0]["setIdentifier"], "aws");
        let meta: ObjectMeta = serde_json::from_value(object["metadata"].clone()).unwrap();
        assert!(is_mine(&owner(), &meta));
        let other = Owner {
            uid: "u-2".into(),
            ..owner()
        };
        assert!(!is_mine(&other, &meta), "another workload of the same name");
    }
}
