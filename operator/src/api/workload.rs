//! `MultiCloudWorkload`: one service to run across pools, sized ahead of demand.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One service to run across CloudPools: its pods, how many, how to size them from demand,
/// and where they may go.
// clippy reads the repeated `type_ = ...` inside separate printcolumn(...) entries as
// duplicated attributes; they are not.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "skyfleet.io",
    version = "v1alpha1",
    kind = "MultiCloudWorkload",
    namespaced,
    shortname = "mcw",
    category = "skyfleet",
    status = "MultiCloudWorkloadStatus",
    derive = "PartialEq",
    doc = "A service skyfleet runs across CloudPools: replicas sized from a demand forecast and placed at the lowest cost that still survives losing whole pools, regions or providers.",
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.replicas.min"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.replicas.max"),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desiredReplicas"
    ),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Pools", type_ = "integer", json_path = ".status.poolsInUse"),
    printcolumn(name = "Cost/h", type_ = "number", json_path = ".status.costPerHour"),
    printcolumn(
        name = "Redundant",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"RedundancySatisfied\")].status"
    ),
    printcolumn(
        name = "Traffic",
        type_ = "string",
        json_path = ".status.traffic.split",
        priority = 1
    ),
    printcolumn(
        name = "Forecast",
        type_ = "string",
        json_path = ".status.demand.model",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = super::limits::workload_spec_rules()))]
pub struct MultiCloudWorkloadSpec {
    /// Total replicas across all pools: never fewer than `min`, never more than `max`.
    pub replicas: ReplicaRange,
    /// Which pods the per-pool Deployments own. Defaults to the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The pods to run. Every container must request cpu and memory: sizing and cost are
    /// computed from the requests.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "has(self.spec) && self.spec.containers.all(c, has(c.resources) && has(c.resources.requests) && 'cpu' in c.resources.requests && 'memory' in c.resources.requests)",
        "message": "every container in template.spec.containers must set resources.requests.cpu and resources.requests.memory: skyfleet sizes and prices replicas from them"
    }]))]
    pub template: PodTemplateSpec,
    /// How replicas are sized from demand.
    #[serde(default)]
    pub scaling: Scaling,
    /// Where replicas may go and what must survive.
    #[serde(default)]
    pub placement: Placement,
    /// What the workload may cost before the platform team is told (the
    /// `SkyfleetWorkloadOverBudget` alert). A budget is reported, never enforced: placement
    /// does not cut replicas to meet it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// How the split of users across pools (`status.traffic`) is damped. The split is
    /// always computed; absent, a change of 5 points or more is published at most every 30s,
    /// and a pool that goes dark or has no Ready replicas drops to 0 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSpec>,
    /// A Service of the same name in every member cluster that runs the workload, selecting
    /// exactly its pods there. Absent: no Service (one skyfleet made is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<WorkloadService>,
    /// The ConfigMaps and Secrets the template references (volumes, projected volumes,
    /// `envFrom`, `env.valueFrom`, `imagePullSecrets`) are always copied into every member
    /// that runs the workload; this says whether a change to them rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<DependenciesSpec>,
}

/// How the copies of the template's ConfigMaps and Secrets behave in the members.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependenciesSpec {
    /// Roll the member Deployments when a copied ConfigMap or Secret changes (a checksum of
    /// their contents in the pod template). Off by default: the copies are updated in place
    /// and the pods see it as Kubernetes delivers it (mounted files change, environment
    /// variables do not).
    #[serde(default)]
    pub roll_on_change: bool,
}

/// The Service skyfleet keeps beside the workload's pods in each member.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "size(self.ports) <= 1 || self.ports.all(p, has(p.name))",
    "message": "service.ports must each have a name when there is more than one"
}]))]
pub struct WorkloadService {
    /// `ClusterIP` (default) or `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// The ports, 1 to 20, each port and protocol once.
    #[schemars(length(min = 1, max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["port", "protocol"]))]
    pub ports: Vec<WorkloadServicePort>,
    /// Annotations of the member Services (e.g. for a cloud's load balancer): at most 32,
    /// values of at most 4096 characters.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {"type": "string", "maxLength": 4096}))]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Which kind of member Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the member cluster.
    #[default]
    ClusterIP,
    /// Reachable from outside through the cloud's load balancer; its address is in the
    /// member Service's `status.loadBalancer`.
    LoadBalancer,
}

impl ServiceType {
    /// The word Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// One port of the member Services.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadServicePort {
    /// A DNS label, required when there is more than one port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "message": "service.ports[].name must be a lowercase DNS label"
    }]))]
    pub name: Option<String>,
    /// The port the Service listens on, 1–65535.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 1 && self <= 65535",
        "message": "service.ports[].port must be between 1 and 65535"
    }]))]
    pub port: i32,
    /// The container port traffic goes to, 1–65535 (default: `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 1 && self <= 65535",
        "message": "service.ports[].targetPort must be between 1 and 65535"
    }]))]
    pub target_port: Option<i32>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default = "default_protocol")]
    #[schemars(length(max = 4))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self in ['TCP', 'UDP', 'SCTP']",
        "message": "service.ports[].protocol must be TCP, UDP or SCTP"
    }]))]
    pub protocol: String,
}

fn default_protocol() -> String {
    "TCP".to_string()
}

/// How traffic weights follow Ready capacity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSpec {
    /// The least change of any pool's weight, in points (0–100), worth publishing; smaller
    /// changes wait until they add up. A drop to 0 is always published at once.
    #[serde(default = "default_min_weight_change")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0 && self <= 100",
        "message": "traffic.minWeightChange must be between 0 and 100 points"
    }]))]
    pub min_weight_change: i32,
    /// The shortest time between two published splits, e.g. 30s (at most 1h). A drop to 0
    /// is always published at once.
    #[serde(default = "default_update_period")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-validations" = super::limits::traffic_period_rules()))]
    pub update_period: String,
    /// Weighted DNS: one ExternalDNS `DNSEndpoint` of the workload's name, in its namespace,
    /// with a record per pool that has traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self {
            min_weight_change: default_min_weight_change(),
            update_period: default_update_period(),
            dns: None,
        }
    }
}

/// The DNS name users resolve, split across pools by weight (ExternalDNS publishes it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsSpec {
    /// The name, e.g. shop.example.com.
    #[schemars(length(max = 253))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$') && self.contains('.') && !self.contains('..')",
        "message": "traffic.dns.hostname must be a lower-case DNS name such as shop.example.com"
    }]))]
    pub hostname: String,
    /// Seconds resolvers may cache an answer (1 to 86400): how long users may still reach a
    /// pool after its weight drops to 0.
    #[serde(default = "default_dns_ttl")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 1 && self <= 86400",
        "message": "traffic.dns.ttl must be between 1 and 86400 seconds"
    }]))]
    pub ttl: i64,
    /// The record type of every pool's record: A or AAAA when the pools' endpoints are IP
    /// addresses, CNAME when they are names.
    #[serde(default)]
    pub record_type: DnsRecordType,
}

fn default_dns_ttl() -> i64 {
    60
}

/// A DNS record type skyfleet publishes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DnsRecordType {
    /// IPv4 addresses.
    #[default]
    A,
    /// IPv6 addresses.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// A name.
    #[serde(rename = "CNAME")]
    Cname,
}

impl DnsRecordType {
    /// As DNS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
        }
    }
}

fn default_min_weight_change() -> i32 {
    5
}
fn default_update_period() -> String {
    "30s".to_string()
}

/// A cost budget, in the currency of the CloudPools' `pricing`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The most the workload's planned replicas should cost per hour; exported as
    /// `skyfleet_workload_cost_budget_per_hour` beside `skyfleet_workload_cost_per_hour`.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0.0 && self <= 1000000000.0",
        "message": super::limits::BUDGET_MESSAGE
    }]))]
    pub cost_per_hour: f64,
}

/// Bounds on the total number of replicas.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = super::limits::replica_rules()))]
pub struct ReplicaRange {
    /// Fewest replicas in total, whatever the demand.
    pub min: i32,
    /// Most replicas in total, whatever the demand.
    pub max: i32,
}

/// How demand becomes a replica count.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scaling {
    /// CPU utilisation of the requests to aim for, in percent (1–100).
    #[serde(rename = "targetCPUUtilizationPercentage", default = "default_target")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 1 && self <= 100",
        "message": "scaling.targetCPUUtilizationPercentage must be between 1 and 100"
    }]))]
    pub target_cpu_utilization_percentage: i32,
    /// How demand is forecast.
    #[serde(default)]
    pub forecast: ForecastSpec,
    /// How long demand must stay lower before replicas are removed, e.g. 5m.
    #[serde(default = "default_stabilization")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-validations" = super::limits::stabilization_rules()))]
    pub scale_down_stabilization: String,
    /// Headroom over the demand measured now, in percent (0–400): the plan never carries
    /// less than current demand × (1 + headroom / 100), whatever the forecast says, so a
    /// burst the forecast did not see is met in the next decision.
    #[serde(rename = "burstHeadroomPercent", default = "default_burst_headroom")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0 && self <= 400",
        "message": "scaling.burstHeadroomPercent must be between 0 and 400"
    }]))]
    pub burst_headroom_percent: i32,
    /// How long a new replica takes to become useful (scheduled, started, Ready), e.g. 2m.
    /// Replicas are added for the forecast over this time plus one decision period, so
    /// capacity is ready when demand arrives without paying for the whole horizon ahead.
    /// Absent: measured from the members, from the decision that adds replicas until they
    /// are all Ready (`status.demand.startupSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-validations" = super::limits::startup_rules()))]
    pub startup: Option<String>,
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            target_cpu_utilization_percentage: default_target(),
            forecast: ForecastSpec::default(),
            scale_down_stabilization: default_stabilization(),
            burst_headroom_percent: default_burst_headroom(),
            startup: None,
        }
    }
}

impl Scaling {
    /// The factor current demand is multiplied by for the floor of the plan (1.0 to 5.0).
    pub fn burst_factor(&self) -> f64 {
        1.0 + f64::from(self.burst_headroom_percent.clamp(0, 400)) / 100.0
    }
}

fn default_target() -> i32 {
    70
}
fn default_burst_headroom() -> i32 {
    10
}
fn default_stabilization() -> String {
    "5m".to_string()
}

/// Forecast settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = super::limits::forecast_rules()))]
pub struct ForecastSpec {
    /// Which model forecasts demand. `Auto` picks per workload by backtest; `None` scales
    /// on current usage only.
    #[serde(default)]
    pub model: ForecastModel,
    /// How far ahead to provision, e.g. 30m.
    #[serde(default = "default_horizon")]
    #[schemars(length(max = 32))]
    pub horizon: String,
    /// The length of one demand cycle, e.g. 24h.
    #[serde(default = "default_season")]
    #[schemars(length(max = 32))]
    pub season: String,
    /// How much demand history to keep and fit on, e.g. 7d.
    #[serde(default = "default_history")]
    #[schemars(length(max = 32))]
    pub history: String,
    /// The upper quantile of the forecast to provision for, in (0, 1).
    #[serde(default = "default_quantile")]
    pub quantile: f64,
}

impl Default for ForecastSpec {
    fn default() -> Self {
        Self {
            model: ForecastModel::default(),
            horizon: default_horizon(),
            season: default_season(),
            history: default_history(),
            quantile: default_quantile(),
        }
    }
}

fn default_horizon() -> String {
    "30m".to_string()
}
fn default_season() -> String {
    "24h".to_string()
}
fn default_history() -> String {
    "7d".to_string()
}
fn default_quantile() -> f64 {
    0.95
}

/// The forecasting model.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ForecastModel {
    /// Chosen per workload by rolling backtest.
    #[default]
    Auto,
    /// Additive Holt-Winters, optionally damped.
    HoltWinters,
    /// Autoregressive least squares on the seasonally adjusted series.
    Autoregressive,
    /// The value one season ago.
    SeasonalNaive,
    /// The latest value.
    LastValue,
    /// No forecast: scale on current usage.
    None,
}

/// Where replicas may go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Which CloudPools may be used, by their labels. Absent means all pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_selector: Option<LabelSelector>,
    /// The least spread across pools, providers and regions.
    #[serde(default)]
    pub spread: Spread,
    /// What must survive: losing any `tolerate` domains still leaves enough replicas.
    #[serde(default)]
    pub redundancy: Redundancy,
    /// Per-pool bounds, by CloudPool name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pools: Vec<PoolBounds>,
    /// The most replicas moved between pools in one decision (scaling up or down is not a
    /// move). Absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = super::limits::moves_rules()))]
    pub max_moves_per_decision: Option<i32>,
}

/// The least spread of replicas.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = super::limits::spread_rules()))]
pub struct Spread {
    /// At least this many pools run replicas.
    #[serde(default)]
    pub min_pools: i32,
    /// At least this many providers run replicas.
    #[serde(default)]
    pub min_providers: i32,
    /// At least this many regions run replicas.
    #[serde(default)]
    pub min_regions: i32,
}

/// What losses the placement must survive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redundancy {
    /// How many failure domains may be lost while the rest still carry the forecast (0–3).
    #[serde(default = "default_tolerate")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0 && self <= 3",
        "message": "placement.redundancy.tolerate must be between 0 and 3"
    }]))]
    pub tolerate: i32,
    /// What counts as one failure: a pool, a region (provider + region) or a provider.
    #[serde(default)]
    pub domain: FailureDomain,
    /// Whether a spot reclaim (every Spot pool lost at once) must also leave enough
    /// replicas for the forecast: `Tolerate` keeps that many on on-demand pools.
    #[serde(default, skip_serializing_if = "SpotLoss::is_ignore")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self == 'Ignore' || self == 'Tolerate'",
        "message": "placement.redundancy.spot must be Ignore (the default) or Tolerate"
    }]))]
    pub spot: SpotLoss,
}

impl Default for Redundancy {
    fn default() -> Self {
        Self {
            tolerate: default_tolerate(),
            domain: FailureDomain::default(),
            spot: SpotLoss::default(),
        }
    }
}

/// What a spot reclaim, every pool with `pricing.capacityType: Spot` lost at once, may
/// cost. Providers reclaim spot capacity in waves that cross pools and regions, so the
/// loss of one failure domain does not describe it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum SpotLoss {
    /// A reclaim is planned for like any other failure, through `tolerate` only.
    #[default]
    Ignore,
    /// Losing every Spot pool at once still leaves the replicas the forecast needs: that
    /// many run on on-demand pools. It holds beside `tolerate`, as a separate scenario.
    Tolerate,
}

impl SpotLoss {
    /// Whether a spot reclaim is not planned for (the default, left out of YAML).
    pub fn is_ignore(&self) -> bool {
        *self == SpotLoss::Ignore
    }
}

fn default_tolerate() -> i32 {
    1
}

/// A unit of failure.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum FailureDomain {
    /// One CloudPool.
    Pool,
    /// All pools of one provider in one region.
    Region,
    /// All pools of one provider.
    #[default]
    Provider,
}

/// Bounds for one pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = super::limits::pool_bounds_rules()))]
pub struct PoolBounds {
    /// The CloudPool's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Keep at least this many replicas in the pool when it is eligible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Never more than this many replicas in the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

/// What the operator decided and saw.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiCloudWorkloadStatus {
    /// The generation of the spec the last decision used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Replicas planned in total.
    #[serde(default)]
    pub desired_replicas: i32,
    /// Replicas ready in total.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pools that run at least one replica.
    #[serde(default)]
    pub pools_in_use: i32,
    /// Cost per hour of the planned replicas.
    #[serde(default)]
    pub cost_per_hour: f64,
    /// Demand now and the forecast the plan provisions for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<DemandStatus>,
    /// One row per pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pools: Vec<PoolPlacementStatus>,
    /// `Ready`, `RedundancySatisfied` and `Degraded`, each with reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// One sentence saying why the last decision was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the last decision was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision_time: Option<Time>,
    /// How users should be split across pools: by Ready capacity, damped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficStatus>,
    /// skyfleet's decision memory, as JSON: the scale-down stabiliser's peak, the pools lost
    /// and in use, refusals, the measured startup. Kept here so a restart or a leader change
    /// loses none of it (a few hundred bytes: the demand history stays in the
    /// WorkloadHistory). Written with the rest of status, or on its own under another field
    /// manager when nothing else changed or before a decision is acted on; read back as
    /// untrusted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 65_536))]
    pub memory: String,
}

/// The split of traffic across pools.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStatus {
    /// The split in one line, `pool=weight` for each pool with traffic (`kubectl get -o wide`).
    #[serde(default)]
    pub split: String,
    /// One row per pool with traffic; the weights sum to 100 (no rows: no pool has Ready
    /// replicas it can serve from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pools: Vec<TrafficWeight>,
    /// When this split was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
}

/// One pool's share of traffic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeight {
    /// The CloudPool.
    pub name: String,
    /// Its share, in percent (1–100).
    pub weight: i32,
    /// Where users reach it: the CloudPool's `traffic.endpoint`, when it declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Demand as the last decision saw it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DemandStatus {
    /// CPU cores used now, summed over all pools.
    pub current_cores: f64,
    /// The upper-quantile forecast peak over the horizon, in cores.
    pub forecast_peak_cores: f64,
    /// The model that made the forecast (or `Reactive` while history is short).
    pub model: String,
    /// The model's backtest error (WAPE), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest_error: Option<f64>,
    /// Samples of demand history kept.
    #[serde(default)]
    pub history_samples: i32,
    /// The least demand the plan carries: current demand × (1 + burstHeadroomPercent/100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_cores: Option<f64>,
    /// Set while measured demand exceeds what the Ready replicas carry at the target: the
    /// plan then grows at once to the floor, whatever the forecast says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub burst: bool,
    /// The upper-quantile forecast peak over the lead time (startup + one decision period):
    /// what replicas are added for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_peak_cores: Option<f64>,
    /// The lead time in seconds: the startup (`scaling.startup`, or measured) plus one
    /// decision period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_seconds: Option<i64>,
    /// How long new replicas took to become Ready, as measured (a slowly decaying maximum
    /// of recent scale-ups); absent until one was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_seconds: Option<i64>,
    /// Why this model: its recent backtest error against the runner-up's and the simple
    /// baselines', e.g. `HoltWinters (recent WAPE 0.031; runner-up Theta 0.034; LastValue
    /// 0.052)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
}

/// One pool's share of the workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolPlacementStatus {
    /// The CloudPool.
    pub name: String,
    /// Replicas planned here.
    pub replicas: i32,
    /// Replicas ready here.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Cost per hour of the planned replicas here.
    #[serde(default)]
    pub cost_per_hour: f64,
}
