#!/usr/bin/env bash
# Fetch the Prometheus Operator's and Kubernetes' object schemas for the Kubernetes output tests.
#
# Both come from the npm registry, pinned: @kubernetes-models/prometheus-operator (the Operator's CRDs)
# and kubernetes-models (core objects) ship each kind as a TypeScript type and a validator compiled
# from its OpenAPI schema. Two checks come out of that:
#   - schemas/<Kind>.json: JSON Schema from the types (ts-json-schema-generator), strict like
#     `kubectl apply --validate=strict`: an unknown field is an error. python's jsonschema reads it.
#   - validate.mjs: node runs each kind's own compiled validator on the objects (patterns such as
#     the Operator's duration format, enums, required fields, minimum lengths).
# Takes a few seconds; re-running with everything present does nothing.
#
# Usage: tests/tools/kubernetes_schema.sh [DIR]   (default: $MONSTACK_KUBERNETES_SCHEMA_DIR, else
#        ~/.cache/monstack/kubernetes-schema-<versions>); tests/test_kubernetes_schema.py reads DIR.
set -euo pipefail

OPERATOR_MODELS_VERSION=6.0.0        # @kubernetes-models/prometheus-operator (the Operator's CRDs)
KUBERNETES_MODELS_VERSION=5.1.0      # kubernetes-models (ConfigMap, Secret)
TS_JSON_SCHEMA_VERSION=2.4.0         # as tests/tools/grafana_schema.sh

dir=${1:-${MONSTACK_KUBERNETES_SCHEMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/monstack/kubernetes-schema-$OPERATOR_MODELS_VERSION-$KUBERNETES_MODELS_VERSION}}
stamp="@kubernetes-models/prometheus-operator@$OPERATOR_MODELS_VERSION kubernetes-models@$KUBERNETES_MODELS_VERSION ts-json-schema-generator@$TS_JSON_SCHEMA_VERSION"
if [[ -f "$dir/VERSIONS" && "$(cat "$dir/VERSIONS")" == "$stamp" ]]; then
  echo "kubernetes schema: up to date in $dir"
  exit 0
fi
command -v npm >/dev/null || { echo "kubernetes schema: npm not found (apt-get install nodejs npm)" >&2; exit 3; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out/schemas" "$work/gen"
# The models (with their validators) stay in the output folder for validate.mjs; the generator does not.
npm install --silent --no-audit --no-fund --ignore-scripts --no-save --no-package-lock --prefix "$out" \
  "@kubernetes-models/prometheus-operator@$OPERATOR_MODELS_VERSION" "kubernetes-models@$KUBERNETES_MODELS_VERSION" >/dev/null
npm install --silent --no-audit --no-fund --ignore-scripts --no-save --no-package-lock --prefix "$work/gen" \
  "ts-json-schema-generator@$TS_JSON_SCHEMA_VERSION" >/dev/null

# The models' packages resolve each other through package.json "exports": bundler resolution follows them.
cat > "$out/tsconfig.json" <<'EOF'
{"compilerOptions": {"module": "esnext", "moduleResolution": "bundler", "skipLibCheck": true}}
EOF
gen="$work/gen/node_modules/.bin/ts-json-schema-generator"
operator="$out/node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com"
core="$out/node_modules/kubernetes-models/v1"
# Kind, the file declaring its type, the type's name. Each run is mostly TypeScript start-up: run them side by side.
kinds=(
  "PrometheusRule $operator/v1/PrometheusRule.d.ts IPrometheusRule"
  "Probe $operator/v1/Probe.d.ts IProbe"
  "PodMonitor $operator/v1/PodMonitor.d.ts IPodMonitor"
  "ServiceMonitor $operator/v1/ServiceMonitor.d.ts IServiceMonitor"
  "ScrapeConfig $operator/v1alpha1/ScrapeConfig.d.ts IScrapeConfig"
  "ConfigMap $core/ConfigMap.d.ts IConfigMap"
  "Secret $core/Secret.d.ts ISecret"
)
pids=()
for entry in "${kinds[@]}"; do
  read -r kind path type <<<"$entry"
  (cd "$out" && "$gen" --tsconfig tsconfig.json --no-type-check --path "$path" --type "$type" --out "schemas/$kind.json") & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

# node validate.mjs < [{"path": ..., "object": {...}}, ...]  ->  [{"path": ..., "error": null | "..."}, ...]
cat > "$out/validate.mjs" <<'EOF'
import { readFileSync } from "node:fs";

const models = {
  "monitoring.coreos.com/v1/PrometheusRule": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
  "monitoring.coreos.com/v1/Probe": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/Probe",
  "monitoring.coreos.com/v1/PodMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/ServiceMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1alpha1/ScrapeConfig": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/ScrapeConfig",
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Secret": "kubernetes-models/v1/Secret",
};
const results = [];
for (const { path, object } of JSON.parse(readFileSync(0, "utf8"))) {
  const module = models[`${object.apiVersion}/${object.kind}`];
  if (!module) {
    results.push({ path, error: `no model for ${object.apiVersion} ${object.kind}` });
    continue;
  }
  const Model = (await import(module))[object.kind];
  try {
    new Model(object).validate();
    results.push({ path, error: null });
  } catch (e) {
    results.push({ path, error: e.message });
  }
}
process.stdout.write(JSON.stringify(results));
EOF
echo "$stamp" > "$out/VERSIONS"

mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp" && mv "$out" "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "kubernetes schema: $stamp -> $dir"
