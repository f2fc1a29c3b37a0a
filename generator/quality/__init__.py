"""The alert-quality benchmark: the catalogue's defaults over a simulated week of a realistic fleet.

fleet      the benchmark inventory (every kind the catalogue covers)
simulate   healthy but realistic traffic for every exporter, and faults applied on top
faults     the injected faults, with the alerts that count as detecting each
run        simulate -> backfill (promtool) -> backtest (generator.backtest) -> score -> bench/results.json

`python -m generator.quality` (part of `make bench`) prints pages per service on a healthy week,
detection of every fault against its bound, and the false-positive rate of pages.
"""
