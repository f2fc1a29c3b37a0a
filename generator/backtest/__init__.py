"""`monstack backtest`: how often the rules would have fired and paged, replayed over recorded history.

rules      the rule sets: rendered files, rule files on disk, or a running Prometheus' rules API
inline     recording rules inlined into the alert expressions that read them
source     range queries against a Prometheus API, chunked under its points limit
state      Prometheus' alerting state machine (for, keep_firing_for) replayed over the evaluations
routing    Alertmanager's grouping, inhibition, time intervals and dedup, simulated over the episodes
engine     the above for one rule set over one window
report     side-by-side table and JSON
scratch    a throwaway Prometheus over backfilled OpenMetrics history (tests, the alert-quality benchmark)
command    what the CLI command does
"""
