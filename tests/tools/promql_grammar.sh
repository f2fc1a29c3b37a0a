#!/usr/bin/env bash
# Install Prometheus 3's own PromQL grammar (the Lezer parser its web UI uses, npm @prometheus-io/lezer-promql)
# into a cache folder for tests/test_promql_grammar.py. Its releases follow Prometheus': 0.305.x is Prometheus 3.5.x.
# Re-running with the parser present does nothing.
#
# Usage: tests/tools/promql_grammar.sh VERSION [DIR]   (DIR default: $MONSTACK_LEZER_PROMQL_DIR, else
#        ~/.cache/monstack/lezer-promql-VERSION); prints the folder holding node_modules.
set -euo pipefail

version=${1:?usage: promql_grammar.sh VERSION [DIR]}
dir=${2:-${MONSTACK_LEZER_PROMQL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/monstack/lezer-promql-$version}}
stamp="@prometheus-io/lezer-promql@$version"
if [[ -f "$dir/VERSIONS" && "$(cat "$dir/VERSIONS")" == "$stamp" ]]; then
  echo "$dir"
  exit 0
fi
command -v npm >/dev/null || { echo "promql grammar: npm not found (apt-get install nodejs npm)" >&2; exit 3; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --silent --no-audit --no-fund --ignore-scripts --no-save --no-package-lock --prefix "$work" \
  "@prometheus-io/lezer-promql@$version" >/dev/null
echo "$stamp" > "$work/VERSIONS"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp" && mv "$work" "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
trap - EXIT
echo "$dir"
