"""Inventory text on its way into Prometheus and Alertmanager templates: escaped, or refused with a reason.

Prometheus runs every alert label value and annotation through Go's
text/template on each evaluation, and Alertmanager does the same with several
receiver fields (email to/from among them). Inventory text therefore takes one
of two paths:

- free text monstack puts inside its own annotation texts (a rule's PromQL in
  its description) goes through `literal`, which makes the template print the
  text exactly;
- single-line values (label values, URLs, email addresses) must not contain a
  template delimiter or a control character: `value_problem` and
  `url_problem` say why (schema validators call them).

A user's own summary and description are templates on purpose; alerttext.check
limits them to the actions monstack can test.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

OPEN, CLOSE = "{{", "}}"
# A Go template action that prints "{{": what `literal` puts in place of each delimiter.
ESCAPED_OPEN = '{{ "{{" }}'
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 3986 leaves these out of URLs (they must be percent-encoded); they are also what breaks out of templates,
# quoted YAML, Slack's <url|text> links and HTML attributes.
_URL_UNSAFE = re.compile(r'[\s{}"<>\\^`|]')


def literal(text: str) -> str:
    """Go text/template source that prints text exactly: only '{{' starts an action, so only it is escaped."""
    return text.replace(OPEN, ESCAPED_OPEN)


def value_problem(text: str, what: str = "a label value") -> str | None:
    """Why text cannot be a single-line value that Prometheus or Alertmanager templates, or None."""
    if OPEN in text or CLOSE in text:
        return (f"{what} must not contain '{{{{' or '}}}}': Prometheus and Alertmanager would run it as a template "
                f"on every evaluation (got {text!r:.80})")
    if m := _CONTROL.search(text):
        return f"{what} must be one line without control characters (found {m.group(0)!r} in {text!r:.80})"
    return None


def url_problem(text: str) -> str | None:
    """Why text cannot be a URL in a rendered file or annotation, or None."""
    if m := _URL_UNSAFE.search(text):
        return f"URLs must not contain {m.group(0)!r}: percent-encode it (got {text!r:.80})"
    if m := _CONTROL.search(text):
        return f"URLs must not contain control characters (found {m.group(0)!r})"
    try:
        if urlsplit(text).port == 0:  # urlsplit: a bracket that opens no IPv6 address; .port: one out of range
            return f"URLs must not name port 0 (got {text!r:.80})"
    except ValueError as exc:
        return f"is not a URL: {exc} (got {text!r:.80})"
    return None
