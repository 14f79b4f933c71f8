//! Upper bounds on what a tenant may ask for, enforced twice: by CEL rules in the CRD (so the
//! API server refuses a bad object with a message a person understands) and by
//! [`check_workload`] / [`check_pool_name`] in Rust (so the operator never trusts that the API
//! server did: an object stored before the rules existed, or a CRD installed without them).
//!
//! Each rule's text and message are built here, from the same constants the Rust checks use,
//! so the two cannot drift; `operator/tests/api_validation.rs` asserts that every refused
//! object is refused by both with the same message.
//!
//! Why each limit (also in the README, "Limits"):
//! - replicas ≤ [`MAX_REPLICAS`]: the placement solver works over 1..=max per pool.
//! - history ≤ 90d, horizon ≤ 24h, season ≤ 14d: the operator keeps the whole window in
//!   memory per workload, and backtests horizon × origins per model.
//! - scaleDownStabilization ≤ 24h: the stabiliser keeps every estimate of its window.
//! - names ≤ 63 characters: a workload's and a pool's name become label values on every
//!   member Deployment and in its selector.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

use super::duration;
use super::workload::MultiCloudWorkloadSpec;

/// Most replicas in total (and per pool): the solver builds 1..=max.
pub const MAX_REPLICAS: i32 = 10_000;
/// Longest demand history window: 90 days.
pub const MAX_HISTORY_SECS: u64 = 90 * 86_400;
/// Longest forecast horizon: 24 hours.
pub const MAX_HORIZON_SECS: u64 = 86_400;
/// Longest season: 14 days.
pub const MAX_SEASON_SECS: u64 = 14 * 86_400;
/// Longest scale-down stabilisation: 24 hours.
pub const MAX_STABILIZATION_SECS: u64 = 86_400;
/// Longest duration string; with at most [`MAX_DURATION_DIGITS`] digits per number, the CEL
/// arithmetic below can never overflow.
pub const MAX_DURATION_LEN: usize = 32;
/// Most digits in one number of a duration (`999999999s`, about 31 years).
pub const MAX_DURATION_DIGITS: usize = 9;
/// Most replicas moved in one decision.
pub const MAX_MOVES_PER_DECISION: i32 = MAX_REPLICAS;
/// Largest spread minimum (pools, providers or regions).
pub const MAX_SPREAD: i32 = 64;
/// Longest workload or pool name: it becomes a label value.
pub const MAX_NAME_LEN: usize = 63;
/// The label skyfleet adds to every member Deployment's selector and pods; a tenant's
/// selector or template must not set it.
pub const RESERVED_POOL_LABEL: &str = "skyfleet.io/pool";

/// A duration whose every number has at most [`MAX_DURATION_DIGITS`] digits: its seconds fit
/// CEL's int with room to spare.
const SHORT_PATTERN: &str = "^([0-9]{1,9}(s|m|h|d))+$";

/// The CEL expression of the seconds in the duration string `field` (which must match
/// [`SHORT_PATTERN`]): sum over each number × its unit.
pub fn seconds_cel(field: &str) -> String {
    format!(
        "{field}.findAll('[0-9]+[smhd]').map(p, int(p.substring(0, size(p) - 1)) * \
         (p.endsWith('d') ? 86400 : (p.endsWith('h') ? 3600 : (p.endsWith('m') ? 60 : 1)))).sum()"
    )
}

/// The seconds of `text` as the CEL rules read it: `None` when it is not a duration, too long
/// or has a number of more than [`MAX_DURATION_DIGITS`] digits.
pub fn bounded_seconds(text: &str) -> Option<u64> {
    if text.len() > MAX_DURATION_LEN || longest_digit_run(text) > MAX_DURATION_DIGITS {
        return None;
    }
    duration::parse(text).ok().map(|d| d.as_secs())
}

fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

fn rule(rule: impl Into<String>, message: impl Into<String>) -> Value {
    json!({"rule": rule.into(), "message": message.into()})
}

/// One bounded duration field: its name in messages, its CEL path from the rule's `self`,
/// an example for the format message, and its limit.
struct DurationField {
    path: &'static str,
    cel: &'static str,
    format_message: &'static str,
    max_secs: u64,
    /// The limit as messages write it.
    max_text: &'static str,
    nonzero: bool,
}

const HORIZON: DurationField = DurationField {
    path: "scaling.forecast.horizon",
    cel: "self.horizon",
    format_message: "scaling.forecast.horizon must be a duration such as 30m, 1h or 1d",
    max_secs: MAX_HORIZON_SECS,
    max_text: "24h",
    nonzero: true,
};
const SEASON: DurationField = DurationField {
    path: "scaling.forecast.season",
    cel: "self.season",
    format_message: "scaling.forecast.season must be a duration such as 24h or 7d",
    max_secs: MAX_SEASON_SECS,
    max_text: "14d",
    nonzero: true,
};
const HISTORY: DurationField = DurationField {
    path: "scaling.forecast.history",
    cel: "self.history",
    format_message: "scaling.forecast.history must be a duration such as 7d",
    max_secs: MAX_HISTORY_SECS,
    max_text: "90d",
    nonzero: true,
};
const STABILIZATION: DurationField = DurationField {
    path: "scaling.scaleDownStabilization",
    cel: "self",
    format_message: "scaling.scaleDownStabilization must be a duration such as 30s, 5m or 1h",
    max_secs: MAX_STABILIZATION_SECS,
    max_text: "24h",
    nonzero: false,
};

/// Longest `scaling.startup`: beyond an hour, sizing ahead is the horizon's job.
pub const MAX_STARTUP_SECS: u64 = 3_600;
const STARTUP: DurationField = DurationField {
    path: "scaling.startup",
    cel: "self",
    format_message: "scaling.startup must be a duration such as 30s, 2m or 10m",
    max_secs: MAX_STARTUP_SECS,
    max_text: "1h",
    nonzero: false,
};

/// Longest `traffic.updatePeriod`: DNS answers are cached for minutes anyway.
pub const MAX_TRAFFIC_PERIOD_SECS: u64 = 3_600;
const TRAFFIC_PERIOD: DurationField = DurationField {
    path: "traffic.updatePeriod",
    cel: "self",
    format_message: "traffic.updatePeriod must be a duration such as 30s, 1m or 5m",
    max_secs: MAX_TRAFFIC_PERIOD_SECS,
    max_text: "1h",
    nonzero: false,
};

impl DurationField {
    fn max_message(&self) -> String {
        format!("{} must be at most {}", self.path, self.max_text)
    }

    fn zero_message(&self) -> String {
        format!("{} must be longer than 0s", self.path)
    }

    fn rules(&self) -> Vec<Value> {
        let f = self.cel;
        let secs = seconds_cel(f);
        let mut out = vec![
            rule(
                format!("{f}.matches('{}')", duration::PATTERN),
                self.format_message,
            ),
            rule(
                format!(
                    "!{f}.matches('{}') || (size({f}) <= {MAX_DURATION_LEN} && {f}.matches('{SHORT_PATTERN}') && {secs} <= {})",
                    duration::PATTERN,
                    self.max_secs
                ),
                self.max_message(),
            ),
        ];
        if self.nonzero {
            out.push(rule(
                format!("!{f}.matches('{SHORT_PATTERN}') || {secs} > 0"),
                self.zero_message(),
            ));
        }
        out
    }

    /// The messages of the rules `text` breaks, as the CEL rules would give them.
    fn check(&self, text: &str, out: &mut Vec<String>) {
        match duration::parse(text) {
            // Matches the pattern, but is too long to be a number of seconds: over the limit.
            Err(duration::DurationError::Overflow(_)) => {
                out.push(self.max_message());
                return;
            }
            Err(_) => {
                out.push(self.format_message.to_string());
                return;
            }
            Ok(_) => {}
        }
        match bounded_seconds(text) {
            None => out.push(self.max_message()),
            Some(s) if s > self.max_secs => out.push(self.max_message()),
            Some(0) if self.nonzero => out.push(self.zero_message()),
            Some(_) => {}
        }
    }
}

const SEASON_VS_HISTORY: &str =
    "scaling.forecast.season must not be longer than scaling.forecast.history";
const HORIZON_VS_HISTORY: &str =
    "scaling.forecast.horizon must be shorter than scaling.forecast.history";

/// The rules of `scaling.forecast`.
pub fn forecast_rules() -> Vec<Value> {
    let mut out = Vec::new();
    for field in [&HORIZON, &SEASON, &HISTORY] {
        out.extend(field.rules());
    }
    let both = |a: &str, b: &str| {
        format!("!(self.{a}.matches('{SHORT_PATTERN}') && self.{b}.matches('{SHORT_PATTERN}'))")
    };
    out.push(rule(
        format!(
            "{} || {} <= {}",
            both("season", "history"),
            seconds_cel("self.season"),
            seconds_cel("self.history")
        ),
        SEASON_VS_HISTORY,
    ));
    out.push(rule(
        format!(
            "{} || {} < {}",
            both("horizon", "history"),
            seconds_cel("self.horizon"),
            seconds_cel("self.history")
        ),
        HORIZON_VS_HISTORY,
    ));
    out.push(rule(
        "self.quantile > 0.0 && self.quantile < 1.0",
        QUANTILE_MESSAGE,
    ));
    out
}

const QUANTILE_MESSAGE: &str =
    "scaling.forecast.quantile must be strictly between 0 and 1, e.g. 0.95";

/// The rules of `scaling.scaleDownStabilization`.
pub fn stabilization_rules() -> Vec<Value> {
    STABILIZATION.rules()
}

/// The rules of `scaling.startup`.
pub fn startup_rules() -> Vec<Value> {
    STARTUP.rules()
}

/// The rules of `traffic.updatePeriod`.
pub fn traffic_period_rules() -> Vec<Value> {
    TRAFFIC_PERIOD.rules()
}

fn replicas_max_message() -> String {
    format!("replicas.max must be at most {MAX_REPLICAS}")
}

/// The rules of `replicas`.
pub fn replica_rules() -> Vec<Value> {
    vec![
        rule("self.min >= 0", "replicas.min must not be negative"),
        rule("self.max >= 1", "replicas.max must be at least 1"),
        rule(
            format!("self.max <= {MAX_REPLICAS}"),
            replicas_max_message(),
        ),
        rule(
            "self.min <= self.max",
            "replicas.min must not exceed replicas.max",
        ),
    ]
}

fn moves_message() -> String {
    format!("placement.maxMovesPerDecision must be between 0 and {MAX_MOVES_PER_DECISION}")
}

/// The rules of `placement.maxMovesPerDecision`.
pub fn moves_rules() -> Vec<Value> {
    vec![rule(
        format!("self >= 0 && self <= {MAX_MOVES_PER_DECISION}"),
        moves_message(),
    )]
}

fn spread_message() -> String {
    format!(
        "placement.spread minimums (minPools, minProviders, minRegions) must be between 0 and {MAX_SPREAD}"
    )
}

/// The rules of `placement.spread`.
pub fn spread_rules() -> Vec<Value> {
    let fields = ["minPools", "minProviders", "minRegions"];
    let range = fields
        .iter()
        .map(|f| format!("self.{f} >= 0 && self.{f} <= {MAX_SPREAD}"))
        .collect::<Vec<_>>()
        .join(" && ");
    vec![rule(range, spread_message())]
}

fn pool_max_message() -> String {
    format!("placement.pools[].maxReplicas must be at most {MAX_REPLICAS}")
}

/// The rules of one `placement.pools[]` entry.
pub fn pool_bounds_rules() -> Vec<Value> {
    vec![
        rule(
            "!has(self.minReplicas) || self.minReplicas >= 0",
            "placement.pools[].minReplicas must not be negative",
        ),
        rule(
            "!has(self.maxReplicas) || self.maxReplicas >= 0",
            "placement.pools[].maxReplicas must not be negative",
        ),
        rule(
            format!("!has(self.maxReplicas) || self.maxReplicas <= {MAX_REPLICAS}"),
            pool_max_message(),
        ),
        rule(
            "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            "placement.pools[].minReplicas must not exceed maxReplicas",
        ),
    ]
}

const SPREAD_VS_MAX: &str =
    "placement.spread.minPools must not exceed replicas.max: every pool counted needs a replica";
const POOL_MIN_VS_MAX: &str = "placement.pools[].minReplicas must not exceed replicas.max";
const LABELS_EMPTY: &str =
    "template.metadata.labels must not be empty: the selector defaults to them";
const SELECTOR_MISMATCH: &str = "selector.matchLabels must match template.metadata.labels, or the Deployments would not own their pods";
const RESERVED_MESSAGE: &str = "selector and template.metadata.labels must not use the label skyfleet.io/pool: skyfleet sets it on every member Deployment";
/// The message of the rule on label-selector requirements (`selector` and
/// `placement.poolSelector`): an unknown operator, or values that do not fit it, would make
/// every selection fail later, in the operator or in a member.
pub const SELECTOR_REQUIREMENT: &str = "matchExpressions in selector and placement.poolSelector need an operator of In, NotIn, Exists or DoesNotExist; In and NotIn need at least one value, Exists and DoesNotExist take none";

/// CEL: every requirement of the label selector at `sel` (a path under `self`) is well formed.
fn requirements_cel(sel: &str) -> String {
    format!(
        "!has({sel}) || !has({sel}.matchExpressions) || {sel}.matchExpressions.all(e, (e.operator == 'In' || e.operator == 'NotIn') ? (has(e.values) && size(e.values) > 0) : ((e.operator == 'Exists' || e.operator == 'DoesNotExist') && (!has(e.values) || size(e.values) == 0)))"
    )
}

/// Whether every requirement of `sel` is one the CEL rule accepts.
fn requirements_ok(sel: Option<&LabelSelector>) -> bool {
    sel.and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
        .all(|e| {
            let values = e.values.as_ref().map_or(0, Vec::len);
            match e.operator.as_str() {
                "In" | "NotIn" => values > 0,
                "Exists" | "DoesNotExist" => values == 0,
                _ => false,
            }
        })
}

/// The message of the transition rule on `spec.selector`.
pub const SELECTOR_IMMUTABLE: &str = "spec.selector is immutable: it is the selector of every member Deployment, which Kubernetes does not let change; create a new MultiCloudWorkload instead";
/// The message of the transition rule on the template's labels when there is no selector.
pub const TEMPLATE_LABELS_IMMUTABLE: &str = "template.metadata.labels are immutable when spec.selector is not set: they are the selector of every member Deployment, which Kubernetes does not let change; create a new MultiCloudWorkload instead";

/// The rules of a workload's `spec`.
pub fn workload_spec_rules() -> Vec<Value> {
    let labels = "(has(self.template.metadata) && has(self.template.metadata.labels))";
    vec![
        rule(
            format!("has(self.selector) || ({labels} && size(self.template.metadata.labels) > 0)"),
            LABELS_EMPTY,
        ),
        rule(
            format!(
                "!has(self.selector) || !has(self.selector.matchLabels) || ({labels} && self.selector.matchLabels.all(k, k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k]))"
            ),
            SELECTOR_MISMATCH,
        ),
        rule(
            "!has(self.placement.pools) || self.placement.pools.all(p, !has(p.minReplicas) || p.minReplicas <= self.replicas.max)",
            POOL_MIN_VS_MAX,
        ),
        rule(
            "self.placement.spread.minPools <= self.replicas.max",
            SPREAD_VS_MAX,
        ),
        rule(
            format!(
                "!({labels} && '{RESERVED_POOL_LABEL}' in self.template.metadata.labels) && !(has(self.selector) && has(self.selector.matchLabels) && '{RESERVED_POOL_LABEL}' in self.selector.matchLabels) && !(has(self.selector) && has(self.selector.matchExpressions) && self.selector.matchExpressions.exists(e, e.key == '{RESERVED_POOL_LABEL}'))"
            ),
            RESERVED_MESSAGE,
        ),
        rule(
            format!(
                "({}) && ({})",
                requirements_cel("self.selector"),
                requirements_cel("self.placement.poolSelector")
            ),
            SELECTOR_REQUIREMENT,
        ),
        // Transition rules: the member Deployments' selector cannot change. Adding a selector
        // equal to the labels it defaulted to (or removing one equal to them) changes nothing.
        rule(
            format!(
                "has(self.selector) && has(oldSelf.selector) ? self.selector == oldSelf.selector : (has(self.selector) ? {} : (has(oldSelf.selector) ? {} : true))",
                same_as_labels("self.selector", "oldSelf"),
                same_as_labels("oldSelf.selector", "self")
            ),
            SELECTOR_IMMUTABLE,
        ),
        rule(
            "has(self.selector) || has(oldSelf.selector) || !has(self.template.metadata) || !has(self.template.metadata.labels) || !has(oldSelf.template.metadata) || !has(oldSelf.template.metadata.labels) || self.template.metadata.labels == oldSelf.template.metadata.labels",
            TEMPLATE_LABELS_IMMUTABLE,
        ),
    ]
}

/// CEL: the selector `sel` selects exactly what the template labels of `obj` default to.
fn same_as_labels(sel: &str, obj: &str) -> String {
    format!(
        "((!has({sel}.matchExpressions) || size({sel}.matchExpressions) == 0) && has({sel}.matchLabels) && has({obj}.template.metadata) && has({obj}.template.metadata.labels) && {sel}.matchLabels == {obj}.template.metadata.labels)"
    )
}

/// The selector the member Deployments of `spec` get (before the pool label): `spec.selector`,
/// or the template's labels.
fn effective_selector(spec: &MultiCloudWorkloadSpec) -> LabelSelector {
    match &spec.selector {
        Some(s) => s.clone(),
        None => LabelSelector {
            match_labels: spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone()),
            match_expressions: None,
        },
    }
}

/// What the transition rules refuse in an update from `old` to `new`: a change of the member
/// Deployments' (immutable) selector.
pub fn check_workload_update(
    old: &MultiCloudWorkloadSpec,
    new: &MultiCloudWorkloadSpec,
) -> Vec<String> {
    let normal = |s: LabelSelector| LabelSelector {
        match_labels: s.match_labels.filter(|l| !l.is_empty()),
        match_expressions: s.match_expressions.filter(|e| !e.is_empty()),
    };
    if normal(effective_selector(old)) == normal(effective_selector(new)) {
        return Vec::new();
    }
    if old.selector.is_some() || new.selector.is_some() {
        vec![SELECTOR_IMMUTABLE.to_string()]
    } else {
        vec![TEMPLATE_LABELS_IMMUTABLE.to_string()]
    }
}

fn name_message(kind: &str) -> String {
    format!(
        "metadata.name of a {kind} must be at most {MAX_NAME_LEN} characters: skyfleet puts it in a label value on every member Deployment"
    )
}

/// The root rules of a kind whose name becomes a label value.
pub fn name_rules(kind: &str) -> Vec<Value> {
    vec![rule(
        format!(
            "!has(self.metadata.name) || (size(self.metadata.name) <= {MAX_NAME_LEN} && self.metadata.name.matches('^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$'))"
        ),
        name_message(kind),
    )]
}

/// Whether `v` is a valid label value: at most 63 characters, alphanumeric at both ends,
/// `-`, `_` and `.` between.
pub fn is_label_value(v: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    v.len() <= MAX_NAME_LEN
        && (v.is_empty()
            || (v.starts_with(alnum)
                && v.ends_with(alnum)
                && v.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))))
}

/// Why `name` cannot name a workload (`kind` MultiCloudWorkload) or pool (CloudPool).
pub fn check_name(kind: &str, name: &str) -> Option<String> {
    (!is_label_value(name)).then(|| name_message(kind))
}

/// Why `name` cannot name a CloudPool, as the CRD would say.
pub fn check_pool_name(name: &str) -> Option<String> {
    check_name("CloudPool", name)
}

/// Every bound of the CRD that `spec` (of a workload named `name`, when known) breaks, with
/// the CRD's messages; empty when it is within bounds. The transition rules need the old
/// object and are not repeated here.
/// The highest `budget.costPerHour`: any real budget is far below, and the bound keeps the
/// exported gauge a plain number.
pub const MAX_BUDGET_PER_HOUR: f64 = 1e9;
/// Why a budget was refused.
pub const BUDGET_MESSAGE: &str = "budget.costPerHour must be a price per hour between 0 and 1e9, in the currency of the CloudPools' pricing";

/// What the API server says of two ports with one port and protocol (the list is a map keyed
/// on both).
const DUPLICATE_PORT_MESSAGE: &str = "Duplicate value";

/// The CRD's bounds on `service`, with its messages.
fn check_service(svc: &crate::api::workload::WorkloadService, out: &mut Vec<String>) {
    if svc.ports.is_empty() || svc.ports.len() > 20 {
        out.push("service.ports must hold 1 to 20 ports".into());
    }
    if svc.ports.len() > 1 && svc.ports.iter().any(|p| p.name.is_none()) {
        out.push("service.ports must each have a name when there is more than one".into());
    }
    let proto = |p: &crate::api::workload::WorkloadServicePort| p.protocol.clone();
    let mut seen = std::collections::BTreeSet::new();
    let dns_label = |n: &str| {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    for p in &svc.ports {
        if p.name.as_deref().is_some_and(|n| !dns_label(n)) {
            out.push("service.ports[].name must be a lowercase DNS label".into());
        }
        if !(1..=65535).contains(&p.port) {
            out.push("service.ports[].port must be between 1 and 65535".into());
        }
        if p.target_port.is_some_and(|t| !(1..=65535).contains(&t)) {
            out.push("service.ports[].targetPort must be between 1 and 65535".into());
        }
        if !["TCP", "UDP", "SCTP"].contains(&proto(p).as_str()) {
            out.push("service.ports[].protocol must be TCP, UDP or SCTP".into());
        }
        if !seen.insert((p.port, proto(p))) {
            out.push(DUPLICATE_PORT_MESSAGE.into());
        }
    }
    if svc.annotations.len() > 32 {
        out.push("service.annotations may hold at most 32 entries".into());
    }
}

pub fn check_workload(name: Option<&str>, spec: &MultiCloudWorkloadSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = name.and_then(|n| check_name("MultiCloudWorkload", n)) {
        out.push(m);
    }
    let r = &spec.replicas;
    if r.min < 0 {
        out.push("replicas.min must not be negative".into());
    }
    if r.max < 1 {
        out.push("replicas.max must be at least 1".into());
    }
    if r.max > MAX_REPLICAS {
        out.push(replicas_max_message());
    }
    if r.min > r.max {
        out.push("replicas.min must not exceed replicas.max".into());
    }
    let target = spec.scaling.target_cpu_utilization_percentage;
    if !(1..=100).contains(&target) {
        out.push("scaling.targetCPUUtilizationPercentage must be between 1 and 100".into());
    }
    if !(0..=400).contains(&spec.scaling.burst_headroom_percent) {
        out.push("scaling.burstHeadroomPercent must be between 0 and 400".into());
    }
    let f = &spec.scaling.forecast;
    HORIZON.check(&f.horizon, &mut out);
    SEASON.check(&f.season, &mut out);
    HISTORY.check(&f.history, &mut out);
    STABILIZATION.check(&spec.scaling.scale_down_stabilization, &mut out);
    if let Some(startup) = &spec.scaling.startup {
        STARTUP.check(startup, &mut out);
    }
    // The cross-field rules compare whatever both sides read, as CEL does.
    let s = |t: &str| -> Option<u64> {
        (longest_digit_run(t) <= MAX_DURATION_DIGITS)
            .then(|| duration::parse(t).ok().map(|d| d.as_secs()))
            .flatten()
    };
    if let (Some(season), Some(history)) = (s(&f.season), s(&f.history))
        && season > history
    {
        out.push(SEASON_VS_HISTORY.into());
    }
    if let (Some(horizon), Some(history)) = (s(&f.horizon), s(&f.history))
        && horizon >= history
    {
        out.push(HORIZON_VS_HISTORY.into());
    }
    if !(f.quantile > 0.0 && f.quantile < 1.0) {
        out.push(QUANTILE_MESSAGE.into());
    }
    if let Some(b) = &spec.budget
        && !(0.0..=MAX_BUDGET_PER_HOUR).contains(&b.cost_per_hour)
    {
        out.push(BUDGET_MESSAGE.into());
    }
    if let Some(t) = &spec.traffic {
        if !(0..=100).contains(&t.min_weight_change) {
            out.push("traffic.minWeightChange must be between 0 and 100 points".into());
        }
        TRAFFIC_PERIOD.check(&t.update_period, &mut out);
        if let Some(dns) = &t.dns {
            if !dns_name(&dns.hostname) {
                out.push(DNS_HOSTNAME_MESSAGE.into());
            }
            if !(1..=86_400).contains(&dns.ttl) {
                out.push("traffic.dns.ttl must be between 1 and 86400 seconds".into());
            }
        }
    }
    if let Some(svc) = &spec.service {
        check_service(svc, &mut out);
    }
    let p = &spec.placement;
    if let Some(m) = p.max_moves_per_decision
        && !(0..=MAX_MOVES_PER_DECISION).contains(&m)
    {
        out.push(moves_message());
    }
    let sp = &p.spread;
    if [sp.min_pools, sp.min_providers, sp.min_regions]
        .iter()
        .any(|v| !(0..=MAX_SPREAD).contains(v))
    {
        out.push(spread_message());
    }
    if sp.min_pools > r.max {
        out.push(SPREAD_VS_MAX.into());
    }
    let tolerate = p.redundancy.tolerate;
    if !(0..=3).contains(&tolerate) {
        out.push("placement.redundancy.tolerate must be between 0 and 3".into());
    }
    for b in &p.pools {
        if b.min_replicas.is_some_and(|v| v < 0) {
            out.push("placement.pools[].minReplicas must not be negative".into());
        }
        if b.max_replicas.is_some_and(|v| v < 0) {
            out.push("placement.pools[].maxReplicas must not be negative".into());
        }
        if b.max_replicas.is_some_and(|v| v > MAX_REPLICAS) {
            out.push(pool_max_message());
        }
        if let (Some(lo), Some(hi)) = (b.min_replicas, b.max_replicas)
            && lo > hi
        {
            out.push("placement.pools[].minReplicas must not exceed maxReplicas".into());
        }
        if b.min_replicas.is_some_and(|v| v > r.max) {
            out.push(POOL_MIN_VS_MAX.into());
        }
    }
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    if spec.selector.is_none() && labels.is_none_or(|l| l.is_empty()) {
        out.push(LABELS_EMPTY.into());
    }
    if let Some(wanted) = spec.selector.as_ref().and_then(|s| s.match_labels.as_ref())
        && !wanted
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    {
        out.push(SELECTOR_MISMATCH.into());
    }
    let reserved = labels.is_some_and(|l| l.contains_key(RESERVED_POOL_LABEL))
        || spec.selector.as_ref().is_some_and(|s| {
            s.match_labels
                .as_ref()
                .is_some_and(|l| l.contains_key(RESERVED_POOL_LABEL))
                || s.match_expressions
                    .iter()
                    .flatten()
                    .any(|e| e.key == RESERVED_POOL_LABEL)
        });
    if reserved {
        out.push(RESERVED_MESSAGE.into());
    }
    if !requirements_ok(spec.selector.as_ref()) || !requirements_ok(p.pool_selector.as_ref()) {
        out.push(SELECTOR_REQUIREMENT.into());
    }
    out
}

const DNS_HOSTNAME_MESSAGE: &str =
    "traffic.dns.hostname must be a lower-case DNS name such as shop.example.com";

/// The CRD's rule for `traffic.dns.hostname`: lower-case letters, digits, `-` and `.`, starting
/// and ending with a letter or digit, with a dot and no empty label; at most 253 characters.
fn dns_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 253
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.contains('.')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        for ok in ["", "a", "web-1", "A.b_c", &"x".repeat(63)] {
            assert!(is_label_value(ok), "{ok:?}");
        }
        for bad in ["-a", "a-", "a b", "ä", &"x".repeat(64)] {
            assert!(!is_label_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn bounded_seconds_reads_what_cel_reads() {
        assert_eq!(bounded_seconds("90d"), Some(MAX_HISTORY_SECS));
        assert_eq!(bounded_seconds("1h30m"), Some(5_400));
        assert_eq!(bounded_seconds("1234567890s"), None, "ten digits");
        assert_eq!(bounded_seconds(&"1s".repeat(17)), None, "too long");
        assert_eq!(bounded_seconds("soon"), None);
    }
}
