"""The stack itself: components up, rule evaluation, notifications sent and failed, scrapes, series, storage."""
from __future__ import annotations

from typing import Any

from generator import names
from generator.components import needed_components
from generator.model import Model
from generator.render.dashboards import builder as b
from generator.render.dashboards import panels as p
from generator.units import parse_bytes

NAME = names.DASHBOARD_STACK


def uid() -> str:
    return names.dashboard_uid(NAME)


def render(model: Model) -> dict[str, Any]:
    self_ = p.Scope({names.MONSTACK_JOB_LABEL: "self"}, {names.ENV: "$env"}, instance=True)
    prom = self_.with_eq(job=names.SELF_PROMETHEUS_JOB)
    am = self_.with_eq(job=names.SELF_ALERTMANAGER_JOB)
    rate = p.RATE
    eval_interval = model.stack.evaluation_interval.seconds
    retention = parse_bytes(model.stack.retention_size) if model.stack.retention_size else None

    status = [
        b.stat("Components", "Whether Prometheus scrapes each part of the stack.",
               [b.Query(f"min by (job) ({self_.raw('up')})", "{{job}}")], unit="none", w=10, h=4, mappings=b.UP_DOWN,
               steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name"),
        b.stat("Config reloads", "Whether the last configuration reload succeeded (0 fires PrometheusConfigReloadFailed).",
               [b.Query(f"min({prom.raw('prometheus_config_last_reload_successful')})", "prometheus"),
                b.Query(f"min({am.raw('alertmanager_config_last_reload_successful')})", "alertmanager")],
               unit="none", w=8, h=4, mappings=[{"type": "value", "options": {
                   "0": {"text": "FAILED", "color": b.RED, "index": 0}, "1": {"text": "OK", "color": b.GREEN, "index": 1}}}],
               steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name"),
        b.stat("Series", "Series in Prometheus's head block: the main driver of memory use.",
               [b.Query(f"sum({prom.raw('prometheus_tsdb_head_series')})", "series")], unit="short", w=6, h=4, graph=True),
    ]
    rules = [
        b.timeseries("Rule group evaluation time", "Duration of the last evaluation of each rule group. Dashed: the evaluation "
                     f"interval ({model.stack.evaluation_interval}); a group slower than it misses evaluations.",
                     [b.Query(f"max by (rule_group) ({prom.raw('prometheus_rule_group_last_duration_seconds')})", "{{rule_group}}")],
                     unit="s", w=12, steps=b.bad_above(0.5 * eval_interval, eval_interval), threshold_line=True,
                     legend_calcs=("max", "lastNotNull")),
        b.timeseries("Rule evaluation failures and missed iterations", "Per second. Any failure fires PrometheusRuleEvaluationFailures.",
                     [b.Query(f"sum(rate({prom.raw('prometheus_rule_evaluation_failures_total')}[{rate}]))", "failures"),
                      b.Query(f"sum(rate({prom.raw('prometheus_rule_group_iterations_missed_total')}[{rate}]))", "missed iterations")],
                     unit="ops", w=12, steps=b.bad_above(0.0001), threshold_line=False),
    ]
    notifications = [
        b.timeseries("Notifications sent", "Alertmanager notifications per second, by integration (slack, pagerduty, email, webhook).",
                     [b.Query(f"sum by (integration) (rate({am.raw('alertmanager_notifications_total')}[{rate}]))", "{{integration}}")],
                     unit="ops", w=8),
        b.timeseries("Notifications failed", "Failed notification attempts per second, by integration; "
                     "over 1% of attempts for 10 minutes fires AlertmanagerNotificationsFailing.",
                     [b.Query(f"sum by (integration) (rate({am.raw('alertmanager_notifications_failed_total')}[{rate}]))", "{{integration}}")],
                     unit="ops", w=8, steps=b.bad_above(0.0001)),
        b.timeseries("Prometheus to Alertmanager", "Alerts Prometheus sent, dropped (errors) and queued for Alertmanager.",
                     [b.Query(f"sum(rate({prom.raw('prometheus_notifications_sent_total')}[{rate}]))", "sent/s"),
                      b.Query(f"sum(rate({prom.raw('prometheus_notifications_dropped_total')}[{rate}]))", "dropped/s"),
                      b.Query(f"sum({prom.raw('prometheus_notifications_queue_length')})", "queued")], unit="short", w=8),
        b.timeseries("Alerts in Alertmanager", "Alerts Alertmanager holds, by state (active, suppressed by inhibition or silence).",
                     [b.Query(f"sum by (state) ({am.raw('alertmanager_alerts')})", "{{state}}")], unit="short", w=12),
        b.timeseries("Alerts firing by severity", "Alerts firing in Prometheus, by severity.",
                     [b.Query(f'count by ({names.SEVERITY}) (ALERTS{{alertstate="firing"}}) or ({p.zero_per_level()})',
                              f"{{{{{names.SEVERITY}}}}}")], unit="short", w=12,
                     overrides=[b.override(level, color={"mode": "fixed", "fixedColor": color})
                                for level, color in b.SEVERITY_COLORS.items()]),
    ]
    env_scrapes = p.Scope({}, {names.ENV: "$env"}, instance=False)
    scrapes = [
        b.timeseries("Scrape duration by job", "Slowest target of each job; close to the scrape timeout means lost scrapes.",
                     [b.Query(f"max by (job) ({env_scrapes.raw('scrape_duration_seconds')})", "{{job}}")], unit="s", w=12,
                     steps=b.bad_above(model.stack.scrape_timeout.seconds * 0.8), threshold_line=True),
        b.timeseries("Samples per job", "Samples scraped per scrape, summed by job.",
                     [b.Query(f"sum by (job) ({env_scrapes.raw('scrape_samples_scraped')})", "{{job}}")], unit="short", w=12),
        b.timeseries("Targets up by job", "Share of each job's targets that answer.",
                     [b.Query(f"avg by (job) ({env_scrapes.raw('up')})", "{{job}}")], unit="percentunit", w=12,
                     steps=b.ok_above(1, 0.99), maximum=1),
        b.timeseries("Samples appended", "Samples written to the TSDB per second.",
                     [b.Query(f"sum(rate({prom.raw('prometheus_tsdb_head_samples_appended_total')}[{rate}]))", "samples/s")],
                     unit="short", w=12),
    ]
    storage = [
        b.timeseries("Series count", "Series in the head block, and series created and removed per second.",
                     [b.Query(f"sum({prom.raw('prometheus_tsdb_head_series')})", "series"),
                      b.Query(f"sum(rate({prom.raw('prometheus_tsdb_head_series_created_total')}[{rate}]))", "created/s"),
                      b.Query(f"sum(rate({prom.raw('prometheus_tsdb_head_series_removed_total')}[{rate}]))", "removed/s")],
                     unit="short", w=12),
        b.timeseries("Storage", "TSDB blocks on disk (the write-ahead log comes on top)." +
                     (f" Dashed: the retention size ({model.stack.retention_size}); above it the oldest blocks go." if retention else ""),
                     [b.Query(f"sum({prom.raw('prometheus_tsdb_storage_blocks_bytes')})", "blocks")], unit="bytes", w=12,
                     steps=b.bad_above(0.9 * retention, retention) if retention else b.NEUTRAL, threshold_line=bool(retention)),
        b.timeseries("Query duration", "90th percentile of query evaluation time, by phase.",
                     [b.Query(f"max by (slice) ({prom.raw('prometheus_engine_query_duration_seconds', eq={'quantile': '0.9'})})",
                              "{{slice}}")], unit="s", w=12),
        b.timeseries("Memory", "Resident memory of each component.",
                     [b.Query(f"max by (job) ({self_.raw('process_resident_memory_bytes')})", "{{job}}")], unit="bytes", w=12),
    ]
    long_term = []
    if model.stack.remote_write:
        rw = prom  # Prometheus' own remote-write queues, one per destination (remote_name)
        long_term += [
            b.timeseries("Remote write: samples sent and failed", "Samples per second Prometheus sends to each long-term "
                         "store, and those that failed; failures over 1% for 15 minutes fire PrometheusRemoteWriteFailing.",
                         [b.Query(f"sum by (remote_name) (rate({rw.raw('prometheus_remote_storage_samples_total')}[{rate}]))",
                                  "{{remote_name}} sent"),
                          b.Query(f"sum by (remote_name) (rate({rw.raw('prometheus_remote_storage_samples_failed_total')}[{rate}]))",
                                  "{{remote_name}} failed")], unit="short", w=8),
            b.timeseries("Remote write: lag behind the newest sample", "How far the newest sample sent to each store is behind "
                         "the newest sample Prometheus has; growing lag fires PrometheusRemoteWriteBehind.",
                         [b.Query(f"scalar(max({rw.raw('prometheus_remote_storage_highest_timestamp_in_seconds')})) - "
                                  f"max by (remote_name) ({rw.raw('prometheus_remote_storage_queue_highest_sent_timestamp_seconds')})",
                                  "{{remote_name}}")], unit="s", w=8),
            b.timeseries("Remote write: samples pending and shards", "Samples queued for each store, and the shards "
                         "(parallel senders) Prometheus runs for it.",
                         [b.Query(f"sum by (remote_name) ({rw.raw('prometheus_remote_storage_samples_pending')})", "{{remote_name}} pending"),
                          b.Query(f"max by (remote_name) ({rw.raw('prometheus_remote_storage_shards')})", "{{remote_name}} shards")],
                         unit="short", w=8),
        ]
    if "victoria-metrics" in needed_components(model):
        vm = self_.with_eq(job=names.SELF_VICTORIA_METRICS_JOB)
        long_term += [
            b.timeseries("VictoriaMetrics: rows ingested", "Samples per second the long-term store writes, by protocol "
                         "(promremotewrite: what Prometheus sends).",
                         [b.Query(f"sum by (type) (rate({vm.raw('vm_rows_inserted_total')}[{rate}])) > 0", "{{type}}")], unit="short", w=8),
            b.timeseries("VictoriaMetrics: stored rows and new series", "Rows on disk, and series created per second.",
                         [b.Query(f"sum({vm.raw('vm_rows')})", "rows"),
                          b.Query(f"sum(rate({vm.raw('vm_new_timeseries_created_total')}[{rate}]))", "new series/s")], unit="short", w=8),
            b.timeseries("VictoriaMetrics: disk", "Data on disk and space left where it stores.",
                         [b.Query(f"sum({vm.raw('vm_data_size_bytes')})", "data"),
                          b.Query(f"min({vm.raw('vm_free_disk_space_bytes')})", "free")], unit="bytes", w=8),
        ]
    variables = [
        b.query_variable("env", "Environment", b.label_values(f'up{{{names.MONSTACK_JOB_LABEL}="self"}}', names.ENV), multi=False),
        b.query_variable("instance", "Instance", b.label_values(f'up{{{names.MONSTACK_JOB_LABEL}="self"}}', "instance")),
    ]
    sections = [b.Section("Components", status), b.Section("Rule evaluation", rules), b.Section("Alerts and notifications", notifications),
                b.Section("Scrapes", scrapes), b.Section("Series and storage", storage),
                b.Section("Long-term storage (remote write)", long_term)]
    links = [b.dashboard_link("Overview", names.dashboard_uid(names.DASHBOARD_OVERVIEW))]
    if model.stack.runbooks_url:
        links.append(b.url_link("Runbooks", model.stack.runbooks_url))
    return b.dashboard(uid(), f"{model.stack.name} / monstack itself", source=model.source, tags=[NAME],
                       description="The monitoring stack watching itself: Prometheus, Alertmanager and the blackbox exporter.",
                       sections=sections, variables=variables, links=links)
