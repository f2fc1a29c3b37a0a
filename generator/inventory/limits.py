"""How much inventory monstack reads: every cap in one place (docs/inventory.md and docs/reliability.md state them).

The caps sit well above real inventories (services.yaml has ~30 YAML values per
service) and below what a hostile file needs to exhaust time or memory: a file
past any of them is rejected with a located error before anything expensive
runs.
"""
from __future__ import annotations

MAX_BYTES = 8 * 2**20  # the inventory file; 10,000 services of the benchmark's shape take ~1.8 MB
MAX_VALUES = 500_000  # YAML values built, counting every value an alias (*name) repeats: billion-laughs files stop here
MAX_DEPTH = 24  # nesting of mappings and lists, aliases expanded; an inventory needs 7
MAX_SERVICES = 10_000  # the largest size `make bench` measures
MAX_ENTRIES = MAX_SERVICES  # entries of any one list or mapping: nothing else in an inventory needs more than services
MAX_LABELS = 64  # entries of one labels mapping (service labels, scrape labels, external_labels): each reaches every alert
MAX_RULES = 200  # custom rules of one service
MAX_PROBES = 50  # health URLs of one service
MAX_TARGETS = 1_000  # scrape targets of one service

# Durations (Prometheus spelling). Prometheus refuses durations past ~292 years; the generated promtool tests
# feed a series sample per minute over an alert's `for` and window, so those stay within days.
MAX_DURATION = "3650d"  # any duration
MAX_FOR = "7d"  # an alert's `for`
MAX_WINDOW = "2d"  # a rule's range window (ratio, histogram_mean, a stalled rule's `for`): a 7d window's tests overrun promtool's sample limit
MAX_SCRAPE_INTERVAL = "2m30s"  # the catalogue's rate() windows are 5m: a longer interval leaves fewer than two samples
MAX_EVALUATION_INTERVAL = "5m"  # rules run this often: a longer interval delays every alert by as much
MIN_WINDOW = "1m"  # a rule's range window (a stalled rule's `for` too): rate() and increase() need two samples in it
MAX_LOOKBACK = "30d"  # a new_label_value rule's lookback
MAX_GROUP_WAIT = "1h"  # the first notification of a group waits at most this long
MIN_SLO_WINDOW = "1h"  # shorter windows make the burn-rate factors meaningless (0d pages on a single error)
MAX_SLO_WINDOW = "366d"
MAX_THRESHOLD = 1e18  # |threshold|: the generated tests compute values 10% beyond it

# PromQL the inventory writes (rule expr, numerator, denominator). The parser monstack checks it with grows
# superlinearly (1,000 chained operators: 1 s and 170 MB; 10,000 nested parentheses crash it), so
# expressions are measured before they are parsed; real alert expressions use a handful of operators.
MAX_PROMQL_LENGTH = 4_096  # characters
MAX_PROMQL_DEPTH = 32  # nested (), [] and {}
MAX_PROMQL_OPERATORS = 100  # binary and unary operators outside label matchers
