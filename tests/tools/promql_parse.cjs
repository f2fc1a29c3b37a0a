// Parse PromQL expressions with Prometheus 3's grammar (@prometheus-io/lezer-promql).
// Usage: node promql_parse.cjs NODE_MODULES_DIR < expressions.json
// stdin: a JSON list of expressions; stdout: a JSON list, per expression the syntax errors found
// ([] when it parses), each {"from": offset, "text": the source around it}.
// Lezer parsers recover from errors and mark them with error nodes; any such node is a syntax error.
const path = require("path");
const { parser } = require(path.join(process.argv[2], "@prometheus-io", "lezer-promql"));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((expr) => {
    const errors = [];
    parser.parse(expr).iterate({
      enter(node) {
        if (node.type.isError) errors.push({ from: node.from, text: expr.slice(Math.max(0, node.from - 20), node.to + 20) });
      },
    });
    return errors;
  });
  process.stdout.write(JSON.stringify(out));
});
