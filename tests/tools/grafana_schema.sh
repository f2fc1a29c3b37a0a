#!/usr/bin/env bash
# Fetch Grafana's published dashboard schema and turn it into JSON Schema for the dashboard tests.
#
# Grafana publishes the dashboard model (its CUE kinds) as TypeScript types in the npm package
# @grafana/schema; ts-json-schema-generator turns those types into JSON Schema that python's
# jsonschema can check. Both come from the npm registry, pinned, so CI and developers validate
# against the same schema. Takes a few seconds; re-running with the schema present does nothing.
#
# Usage: tests/tools/grafana_schema.sh [DIR]   (default: $MONSTACK_GRAFANA_SCHEMA_DIR, else
#        ~/.cache/monstack/grafana-schema-<version>); tests/test_dashboards_schema.py reads DIR.
set -euo pipefail

GRAFANA_SCHEMA_VERSION=13.2.3        # bump with Grafana releases; the dashboards' schemaVersion follows
TS_JSON_SCHEMA_VERSION=2.4.0         # the newest release that supports Node 18/20 (Debian's and ours)
# Panel plugins whose options and field config monstack's dashboards use.
PANELS=(timeseries stat table text)

dir=${1:-${MONSTACK_GRAFANA_SCHEMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/monstack/grafana-schema-$GRAFANA_SCHEMA_VERSION}}
stamp="@grafana/schema@$GRAFANA_SCHEMA_VERSION ts-json-schema-generator@$TS_JSON_SCHEMA_VERSION"
if [[ -f "$dir/VERSIONS" && "$(cat "$dir/VERSIONS")" == "$stamp" ]]; then
  echo "grafana schema: up to date in $dir"
  exit 0
fi
command -v npm >/dev/null || { echo "grafana schema: npm not found (apt-get install nodejs npm)" >&2; exit 3; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --silent --no-audit --no-fund --ignore-scripts --no-save --no-package-lock --prefix "$work" \
  "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "ts-json-schema-generator@$TS_JSON_SCHEMA_VERSION" >/dev/null

gen="$work/node_modules/.bin/ts-json-schema-generator"
types="$work/node_modules/@grafana/schema/dist/types/raw"
out="$work/out"
mkdir -p "$out/panels"
# The classic dashboard model (schemaVersion 3x/4x JSON, what file provisioning reads).
# Each run is mostly TypeScript start-up: run them side by side, then fail if any failed.
pids=()
"$gen" --no-type-check --path "$types/dashboard/x/types.gen.d.ts" --type Dashboard --out "$out/dashboard.json" & pids+=($!)
for panel in "${PANELS[@]}"; do
  src="$types/composable/$panel/panelcfg/x/types.gen.d.ts"
  "$gen" --no-type-check --path "$src" --type Options --out "$out/panels/$panel.options.json" & pids+=($!)
  if grep -q "export interface FieldConfig\b" "$src"; then
    "$gen" --no-type-check --path "$src" --type FieldConfig --out "$out/panels/$panel.fieldconfig.json" & pids+=($!)
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
echo "$stamp" > "$out/VERSIONS"

mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp" && mv "$out" "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "grafana schema: $stamp -> $dir"
