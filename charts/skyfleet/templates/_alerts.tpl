{{- /*
skyfleet's alert rules, as a Prometheus rules document (`groups:` at column 0). The
PrometheusRule template puts it under `spec:`; hack/render-rules.sh turns the same render into
the plain rules file monitoring/skyfleet.rules.yaml. Prometheus's own templates in the
annotations are written as Helm raw strings ({{`{{ ... }}`}}) so Helm leaves them alone.
Every alert has a runbook section of its name in the chart README (#alerts).
*/ -}}
{{- define "skyfleet.alertRules" -}}
{{- $a := .Values.monitoring.alerts -}}
groups:
- name: skyfleet
  rules:
  - alert: SkyfleetRedundancyLost
    expr: skyfleet_workload_condition{condition="RedundancySatisfied"} == 0
    for: {{ $a.redundancyLostFor }}
    labels:
      severity: warning
    annotations:
      summary: A workload would not survive the losses it is configured to tolerate
      description: {{`'MultiCloudWorkload {{ $labels.namespace }}/{{ $labels.workload }} has had RedundancySatisfied=False ({{ $labels.reason }}) for a while: losing the configured pools, regions or providers would leave too few Ready replicas.'`}}
      runbook: charts/skyfleet/README.md#skyfleetredundancylost
  - alert: SkyfleetPlacementInfeasible
    expr: |-
      group by (namespace, workload, reason) (
          skyfleet_workload_condition{condition="Degraded", reason=~"Infeasible|NoEligiblePools|InvalidSpec"} == 1
        or
          skyfleet_workload_condition{condition!="Degraded", reason=~"Infeasible|NoEligiblePools|InvalidSpec"} == 0
      )
    for: {{ $a.placementInfeasibleFor }}
    labels:
      severity: warning
    annotations:
      summary: A workload's placement constraints cannot all hold
      description: {{`'MultiCloudWorkload {{ $labels.namespace }}/{{ $labels.workload }} cannot be planned as asked ({{ $labels.reason }}); nothing that runs is reduced, but growth and redundancy may fall short. kubectl describe mcw says why.'`}}
      runbook: charts/skyfleet/README.md#skyfleetplacementinfeasible
  - alert: SkyfleetPoolNotReady
    expr: skyfleet_pool_ready * on (pool) group_left (provider, region) skyfleet_pool_info == 0
    for: {{ $a.poolNotReadyFor }}
    labels:
      severity: warning
    annotations:
      summary: A CloudPool is not Ready
      description: {{`'CloudPool {{ $labels.pool }} ({{ $labels.provider }}, {{ $labels.region }}) is not Ready: its member does not answer, its kubeconfig is refused, or it is drained or being deleted. Its replicas are planned elsewhere after the failover grace.'`}}
      runbook: charts/skyfleet/README.md#skyfleetpoolnotready
  - alert: SkyfleetFailoverInProgress
    expr: skyfleet_workload_failed_over_pools > 0
    for: {{ $a.failoverFor }}
    labels:
      severity: warning
    annotations:
      summary: A workload's replicas are planned away from a lost pool
      description: {{`'MultiCloudWorkload {{ $labels.namespace }}/{{ $labels.workload }} has {{ $value }} pool(s) lost past the failover grace; their replicas are planned on the other pools until the pools answer again.'`}}
      runbook: charts/skyfleet/README.md#skyfleetfailoverinprogress
  - alert: SkyfleetForecastErrorHigh
    expr: skyfleet_workload_forecast_wape_ratio > {{ $a.forecastWapeAbove }}
    for: {{ $a.forecastErrorFor }}
    labels:
      severity: info
    annotations:
      summary: A workload's demand forecast is far off
      description: {{`'The forecast of MultiCloudWorkload {{ $labels.namespace }}/{{ $labels.workload }} has a recent backtest WAPE of {{ $value | humanizePercentage }}; the plan leans on the burst floor and the upper quantile.'`}}
      runbook: charts/skyfleet/README.md#skyfleetforecasterrorhigh
  - alert: SkyfleetWorkloadOverBudget
    expr: skyfleet_workload_cost_per_hour > on (namespace, workload) skyfleet_workload_cost_budget_per_hour
    for: {{ $a.overBudgetFor }}
    labels:
      severity: warning
    annotations:
      summary: A workload costs more per hour than its budget
      description: {{`'MultiCloudWorkload {{ $labels.namespace }}/{{ $labels.workload }} costs {{ $value }} per hour, above its spec.budget.costPerHour.'`}}
      runbook: charts/skyfleet/README.md#skyfleetworkloadoverbudget
  - alert: SkyfleetReconcileErrors
    expr: |-
      sum by (controller) (rate(skyfleet_reconcile_errors_total[10m]))
        / (sum by (controller) (rate(skyfleet_reconciles_total[10m])) > 0)
        > {{ $a.reconcileErrorRatioAbove }}
    for: {{ $a.reconcileErrorsFor }}
    labels:
      severity: warning
    annotations:
      summary: Many of skyfleet's reconciles fail
      description: {{`'{{ $value | humanizePercentage }} of the {{ $labels.controller }} reconciles failed over the last 10 minutes.'`}}
      runbook: charts/skyfleet/README.md#skyfleetreconcileerrors
  - alert: SkyfleetOperatorAbsent
    expr: absent(skyfleet_leader)
    for: {{ $a.operatorAbsentFor }}
    labels:
      severity: critical
    annotations:
      summary: No skyfleet operator is scraped
      description: No skyfleet operator replica has been scraped; nothing places, fails over or reports workloads.
      runbook: charts/skyfleet/README.md#skyfleetoperatorabsent
  - alert: SkyfleetNoLeader
    expr: max(skyfleet_leader) == 0
    for: {{ $a.noLeaderFor }}
    labels:
      severity: critical
    annotations:
      summary: skyfleet runs but no replica leads
      description: skyfleet replicas are scraped and none holds the leader Lease; nothing places, fails over or reports workloads.
      runbook: charts/skyfleet/README.md#skyfleetnoleader
{{- end -}}
