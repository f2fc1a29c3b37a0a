"""The services.yaml schema: what users write. Shapes and single-field rules only.

Name references (a receiver a level names, a team a service names) are
checked on the raw YAML beside this schema (generator/inventory/references.py),
so one run reports them with the shape errors; duplicates, PromQL that does not
parse and rules that need the whole inventory are checked when the model is
resolved (generator/model.py).
"""
from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from generator import components, defaults, textsafety
from generator.durations import parse_duration
from generator.inventory import limits, promqlguard

SCHEMA_VERSION = 1

LEVELS = ("P0", "P1", "P2", "P3")
Level = Literal["P0", "P1", "P2", "P3"]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_ALERT = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$")
_URL = re.compile(r"^(https?)://[^\s/?#]+(/[^\s]*)?$")
_PROBE_URL = re.compile(r"^(https?|tcp|icmp|dns)://[^\s/?#]+(/[^\s]*)?$")
_BYTES = re.compile(r"^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")
# Alertmanager runs `to` and `from` as templates and joins `to` with commas: no braces, quotes, angle brackets or commas.
_EMAIL = re.compile(r'^[^@\s{}"<>,;\\]+@[^@\s{}"<>,;\\]+$')
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")


@dataclass(frozen=True)
class JsonPattern:
    """A `pattern` in the JSON Schema editors read (services.schema.json), so they flag `for: 5 minutes` as you type.
    The validators still decide, with better messages; the pattern is theirs in ECMAScript syntax."""

    pattern: str

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        out = dict(handler(core))
        out["pattern"] = self.pattern
        return out


@dataclass(frozen=True)
class _Matches:
    """A regex the value must match: checked with a message naming an example, published as the schema's pattern."""

    pattern: re.Pattern[str]
    what: str
    example: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check(value: str) -> str:
            if not self.pattern.match(value):
                raise ValueError(f"must be {self.what}, e.g. {self.example} (got {value!r})")
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        out = dict(handler(core))
        out["pattern"] = self.pattern.pattern
        return out


def _matches(pattern: re.Pattern[str], what: str, example: str) -> _Matches:
    return _Matches(pattern, what, example)


# Prometheus durations as parse_duration reads them: units largest first, each at most once, not empty.
DURATION_PATTERN = r"^(?=[0-9])([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"


def _check_duration(value: Any) -> str:
    if not isinstance(value, str):  # `for: 5` is a number to YAML; say what a duration looks like
        raise ValueError(f"must be a duration like 30s, 5m, 1h30m or 15d (got {value!r})")
    parse_duration(value)  # raises ValueError with an example of a valid value
    return value


def _duration(positive: bool = False, at_least: str = "0s", at_most: str = limits.MAX_DURATION) -> BeforeValidator:
    """A duration check with bounds: Prometheus and Alertmanager refuse some values, and the generated tests must stay small."""
    low, high = parse_duration(at_least), parse_duration(at_most)

    def check(value: Any) -> str:
        d = parse_duration(_check_duration(value))
        if positive and d.ms == 0:
            raise ValueError(f"must be longer than 0s (got {value!r})")
        if d < low:
            raise ValueError(f"must be at least {at_least} (got {value!r})")
        if d > high:
            raise ValueError(f"must be at most {at_most} (got {value!r})")
        return value

    return BeforeValidator(check)


def _check_label_name(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(f"must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*) (got {value!r})")
    if value.startswith("__"):
        raise ValueError(f"label names starting with __ are reserved for Prometheus (got {value!r})")
    return value


def _check_hostport(value: str) -> str:
    m = _HOSTPORT.match(value)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"must be host:port, e.g. api.internal:3000 or 10.0.0.5:9100 (got {value!r})")
    return value


def _check_url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError(f"must be an http(s) URL, e.g. https://grafana.example.com (got {value!r})")
    if re.match(r"^https?://[^/@\s]+@", value):
        raise ValueError("must not carry credentials (user:password@); use a *_file field instead")
    if why := textsafety.url_problem(value):
        raise ValueError(why)
    return value


def _check_probe_url(value: str) -> str:
    if not _PROBE_URL.match(value):
        raise ValueError(f"must be a URL with scheme http, https, tcp, icmp or dns, e.g. http://api:3000/health (got {value!r})")
    if re.match(r"^[a-z]+://[^/@\s]+@", value):
        raise ValueError("must not carry credentials (user:password@)")
    if why := textsafety.url_problem(value):
        raise ValueError(why)
    return value


def _check_component(value: str) -> str:
    if value not in components.IMAGES:
        raise ValueError(f"must be a component of the stack with a pinned image ({', '.join(components.IMAGES)}) (got {value!r})")
    return value


def _check_file_ref(value: str) -> str:
    if not value or value.strip() != value or textsafety.value_problem(value):
        raise ValueError(f"must be the path of a file holding the secret, e.g. secrets/slack_webhook_url (got {value!r})")
    if re.match(r"^[a-z]+://", value):
        raise ValueError("must be a path to a file holding the secret, not the secret itself")
    return value


def _check_promql_size(value: str) -> str:
    if why := promqlguard.problem(value):
        raise ValueError(why)
    return value


_NUMBER = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads 1e-3 (no dot) as a string: take it as the number it spells; true, "yes" and .nan stay errors."""
    return float(value) if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) else value


def _check_value(value: str) -> str:
    """A label value: Prometheus templates alert label values, so no delimiters; one line."""
    if why := textsafety.value_problem(value):
        raise ValueError(why)
    return value


_DURATION = JsonPattern(DURATION_PATTERN)
Duration = Annotated[str, _duration(), _DURATION]
Interval = Annotated[str, _duration(positive=True), _DURATION]  # how often or how long something runs: 0s would mean never or always
For = Annotated[str, _duration(at_most=limits.MAX_FOR), _DURATION]  # an alert's `for`; its generated tests feed series that long
ScrapeInterval = Annotated[str, _duration(positive=True, at_most=limits.MAX_SCRAPE_INTERVAL), _DURATION]
EvaluationInterval = Annotated[str, _duration(positive=True, at_most=limits.MAX_EVALUATION_INTERVAL), _DURATION]
# A rule's range window: rate() needs two samples in it, and the generated tests feed a sample a minute over it.
Window = Annotated[str, _duration(at_least=limits.MIN_WINDOW, at_most=limits.MAX_WINDOW), _DURATION]
# A catalogue alert's rate window: the model checks it against the scrape interval (two samples at least).
RateWindow = Annotated[str, _duration(positive=True, at_most=limits.MAX_WINDOW), _DURATION]
GroupWait = Annotated[str, _duration(at_most=limits.MAX_GROUP_WAIT), _DURATION]
SloWindow = Annotated[str, _duration(at_least=limits.MIN_SLO_WINDOW, at_most=limits.MAX_SLO_WINDOW), _DURATION]
Lookback = Annotated[str, _duration(positive=True, at_most=limits.MAX_LOOKBACK), _DURATION]
Name = Annotated[str, _matches(_NAME, "a lowercase name of letters, digits and dashes starting with a letter", "checkout-api")]
LabelName = Annotated[str, AfterValidator(_check_label_name), JsonPattern(_LABEL.pattern)]
MetricName = Annotated[str, _matches(_METRIC, "a Prometheus metric name", "http_requests_total")]
AlertName = Annotated[str, _matches(_ALERT, "an alert name in CamelCase", "SalesSyncStalled")]
HostPort = Annotated[str, AfterValidator(_check_hostport), JsonPattern(_HOSTPORT.pattern)]
Url = Annotated[str, AfterValidator(_check_url), JsonPattern(_URL.pattern)]
ProbeUrl = Annotated[str, AfterValidator(_check_probe_url), JsonPattern(_PROBE_URL.pattern)]
FileRef = Annotated[str, AfterValidator(_check_file_ref)]
Bytes = Annotated[str, _matches(_BYTES, "a size with a unit", "512MiB or 10GB")]
PromQL = Annotated[str, Field(min_length=1, description="A PromQL expression; parsed when the inventory is resolved."),
                   AfterValidator(_check_promql_size)]
# The number check runs after _yaml_number, and the JSON Schema shows its bounds (minimum, maximum) to editors.
_YAML_NUMBER = BeforeValidator(_yaml_number)
Percent = Annotated[float, Field(gt=0, lt=100), _YAML_NUMBER]
Threshold = Annotated[float, Field(ge=-limits.MAX_THRESHOLD, le=limits.MAX_THRESHOLD), _YAML_NUMBER]
Rate = Annotated[float, Field(ge=0, le=limits.MAX_THRESHOLD), _YAML_NUMBER]  # events per second, a count: not negative
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]

_LABEL_VALUE = Annotated[str, Field(max_length=1024), AfterValidator(_check_value)]


class Strict(BaseModel):
    """Every schema object: unknown keys are errors, values are immutable."""

    # strict: YAML's true, "yes" and "2" stay what they are (no bool for a number, no string for a bool or a number);
    # no inf/nan: every number must render and compare.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False)


# Fields that would put a secret inline, and the file field to use instead.
_INLINE_SECRETS = {
    "webhook_url": "webhook_url_file",
    "api_url": "webhook_url_file",
    "routing_key": "routing_key_file",
    "service_key": "routing_key_file",
    "password": "password_file",
    "auth_password": "auth_password_file",
    "auth_secret": "auth_password_file",
    "bearer_token": "bearer_token_file",
    "bot_token": "bot_token_file",
    "token": "bearer_token_file",
}


class _NoInlineSecrets(Strict):
    """Objects that take secrets: an inline secret field gets a pointed message, not 'unknown key'."""

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, instead in _INLINE_SECRETS.items():
                if key in data:
                    raise PydanticCustomError(
                        "inline_secret",
                        "secrets must not be written in services.yaml: put the value in a file and set {instead} to its path",
                        {"key": key, "instead": instead},
                    )
        return data


# --- stack -----------------------------------------------------------------


class Retention(Strict):
    time: Interval = Field(defaults.RETENTION_TIME, description="How long Prometheus keeps samples (--storage.tsdb.retention.time).")
    size: Bytes | None = Field(None, description="Upper bound on TSDB size (--storage.tsdb.retention.size), e.g. 10GB.")


class StackUrls(Strict):
    """Where people reach the stack; used for links in notifications and dashboards."""

    prometheus: Url = "http://localhost:9090"
    alertmanager: Url = "http://localhost:9093"
    grafana: Url = "http://localhost:3000"
    runbooks: Url | None = Field(None, description="Where docs/runbooks is published; alert runbook_url links point there.")


class Replicas(Strict):
    """Replica counts for HA: each replica is its own process (native) or compose service."""

    prometheus: int = Field(1, ge=1, le=2, description="1, or 2 for an HA pair scraping the same targets (each with a "
                            "prometheus_replica external label, dropped from the alerts so Alertmanager deduplicates them).")
    alertmanager: int = Field(1, ge=1, le=5, description="Alertmanager cluster size: the replicas gossip (port 9094 in "
                              "compose, 127.0.0.1 natively) and send each notification once; Prometheus sends to all.")


class BasicAuth(_NoInlineSecrets):
    username: Annotated[str, Field(min_length=1)]
    password_file: FileRef


class WebAuth(_NoInlineSecrets):
    """Basic auth in front of Prometheus, Alertmanager and VictoriaMetrics, and every client of theirs authenticating."""

    username: Annotated[str, _matches(re.compile(r"^[A-Za-z0-9._-]{1,64}$"), "a user name of letters, digits, dots, "
                                      "dashes and underscores", "monstack")] = "monstack"
    password_file: FileRef = Field(description=(
        "File in the secrets folder holding the password (one line). The runners create it with a random password "
        "when it does not exist."))


class RemoteWrite(_NoInlineSecrets):
    """A remote_write destination (VictoriaMetrics, Thanos Receive, Mimir, ...)."""

    name: Name
    url: Url
    basic_auth: BasicAuth | None = None
    bearer_token_file: FileRef | None = None


class Stack(Strict):
    name: Name = "monstack"
    environment: Annotated[str, _matches(re.compile(r"^[a-z][a-z0-9_-]*$"), "a lowercase environment name", "production")] = "production"
    scrape_interval: ScrapeInterval = defaults.SCRAPE_INTERVAL
    scrape_timeout: Interval = defaults.SCRAPE_TIMEOUT
    evaluation_interval: EvaluationInterval = defaults.EVALUATION_INTERVAL
    retention: Retention = Retention()
    external_labels: dict[LabelName, _LABEL_VALUE] = Field(default_factory=dict, max_length=limits.MAX_LABELS)
    urls: StackUrls = StackUrls()
    replicas: Replicas = Replicas()
    remote_write: list[RemoteWrite] = Field(default_factory=list)
    images: dict[Annotated[str, AfterValidator(lambda v: _check_component(v))], Annotated[str, _matches(
        _IMAGE, "an image reference", "registry.example.com/prom/prometheus:v3.5.0")]] = Field(
        default_factory=dict, description="compose: per-component image overrides (component: image:tag), e.g. for an internal build.")
    image_mirror: Annotated[str, _matches(re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$"), "a registry host and optional path",
                                          "mirror.example.com/dockerhub")] | None = Field(
        None, description="compose: pull every pinned image through this registry mirror (it replaces the registry host).")
    # A lambda: _check_time_zone is defined with the time intervals further down.
    timezone: Annotated[str, AfterValidator(lambda v: _check_time_zone(v))] = Field(
        defaults.TIMEZONE, description="IANA time zone of built-in time intervals (the default P3 business hours), e.g. Europe/Berlin.")
    secrets_dir: Annotated[str, Field(min_length=1), AfterValidator(lambda v: _check_file_ref(v))] = Field(
        defaults.SECRETS_DIR, description="The folder every *_file must lie in (after following symlinks), relative to the "
                                          "inventory's folder or absolute; it must not hold the inventory itself.")
    web_auth: WebAuth | None = Field(None, description=(
        "Basic auth for the web APIs of Prometheus, Alertmanager and VictoriaMetrics (off when absent): any web page "
        "could otherwise create silences and post alerts to Alertmanager on 127.0.0.1."))
    allow_always_muted: bool = Field(False, description=(
        "Accept (with a warning) a mute time interval that always matches on P0, a team or every level: paging stays off "
        "until it is removed. Without it such an interval is an error."))


# --- receivers -------------------------------------------------------------


class _Receiver(_NoInlineSecrets):
    send_resolved: bool = Field(True, description="Also notify when the alert resolves.")


class SlackReceiver(_Receiver):
    type: Literal["slack"]
    webhook_url_file: FileRef | None = Field(None, description=(
        "File holding the incoming-webhook URL of a Slack app. Slack posts it to the one channel it was created for and ignores "
        "`channel`: give every channel its own webhook (and file)."))
    bot_token_file: FileRef | None = Field(None, description=(
        "File holding a Slack bot token (xoxb-..., scope chat:write) instead of a webhook: Alertmanager posts with "
        "chat.postMessage to `channel`, so one token serves every channel the bot is invited to."))
    channel: Annotated[str, _matches(re.compile(r"^([#@][a-z0-9._-]+|[CGD][A-Z0-9]{8,})$"), "a Slack channel, user or channel ID",
                                     "#incidents")]

    @model_validator(mode="after")
    def _one_way_in(self) -> "SlackReceiver":
        if (self.webhook_url_file is None) == (self.bot_token_file is None):
            raise ValueError("set webhook_url_file (an incoming webhook of one channel) or bot_token_file (chat.postMessage), one of them")
        return self


class PagerDutyReceiver(_Receiver):
    type: Literal["pagerduty"]
    routing_key_file: FileRef = Field(description="File holding the PagerDuty Events v2 integration (routing) key.")
    url: Url | None = Field(None, description="Events API URL; defaults to PagerDuty's. Set for the EU service region.")


class EmailReceiver(_Receiver):
    type: Literal["email"]
    to: Annotated[list[Annotated[str, _matches(_EMAIL, "an email address", "oncall@example.com")]], Field(min_length=1)]
    from_: Annotated[str, _matches(_EMAIL, "an email address", "alerts@example.com")] = Field(alias="from")
    smarthost: HostPort
    auth_username: str | None = None
    auth_password_file: FileRef | None = Field(None, description=(
        "File holding the SMTP password. Alertmanager 0.25 sends its content verbatim: no trailing newline (printf '%s')."))
    require_tls: bool = True

    @model_validator(mode="after")
    def _auth_pair(self) -> "EmailReceiver":
        if (self.auth_username is None) != (self.auth_password_file is None):
            raise ValueError("auth_username and auth_password_file go together: set both or neither")
        return self


class WebhookReceiver(_Receiver):
    type: Literal["webhook"]
    url: Url = Field(description="Where Alertmanager POSTs its webhook JSON (e.g. a ticketing bridge).")
    bearer_token_file: FileRef | None = None
    max_alerts: int = Field(0, ge=0, description="Cap on alerts per message; 0 means all.")


Receiver = Annotated[Union[SlackReceiver, PagerDutyReceiver, EmailReceiver, WebhookReceiver], Field(discriminator="type")]


# --- policy ----------------------------------------------------------------


class LevelPolicy(Strict):
    """How one severity level is delivered. Timings default per level (see docs/inventory.md)."""

    receivers: Annotated[list[Name], Field(min_length=1)]
    group_wait: GroupWait | None = None
    group_interval: Interval | None = None
    repeat_interval: Interval | None = None
    active_time_intervals: list[Name] | None = Field(None, description=(
        "Notify only inside these time intervals. Omitted: P3 notifies only during business-hours (yours if you define a time "
        "interval of that name, else Monday to Friday 09:00-17:00 in stack.timezone), P0-P2 always. [] means always."))
    group_by: list[LabelName] | None = Field(None, description="Labels whose values make one notification; default alertname, service. Add instance to notify per host.")
    mute_time_intervals: list[Name] = Field(default_factory=list, description="Never notify inside these time intervals.")


class TimeRange(Strict):
    start_time: Annotated[str, _matches(_CLOCK, "a time of day HH:MM", "09:00")]
    end_time: Annotated[str, _matches(_CLOCK, "a time of day HH:MM", "17:30")]

    @model_validator(mode="after")
    def _ordered(self) -> "TimeRange":
        if self.end_time <= self.start_time:  # HH:MM compares as text; Alertmanager refuses these
            raise ValueError(f"end_time must be after start_time (got {self.start_time}-{self.end_time}); "
                             "for a range past midnight write two ranges, e.g. 22:00-24:00 and 00:00-06:00")
        return self


def _check_weekday_range(value: str) -> str:
    parts = value.split(":")
    if len(parts) > 2 or any(p not in _WEEKDAYS for p in parts):
        raise ValueError(f"must be a weekday or a range of them, e.g. monday:friday (got {value!r})")
    # Alertmanager's week runs sunday..saturday and its ranges do not wrap.
    week = ("sunday",) + _WEEKDAYS[:-1]
    if len(parts) == 2 and week.index(parts[0]) > week.index(parts[1]):
        raise ValueError(f"weeks run from sunday to saturday and ranges do not wrap: write sunday:saturday for every day, "
                         f"or split the range (e.g. saturday, sunday) (got {value!r})")
    return value


def _check_month_range(value: str) -> str:
    parts = value.split(":")
    if len(parts) > 2 or any(not (p in _MONTHS or (p.isdigit() and 1 <= int(p) <= 12)) for p in parts):
        raise ValueError(f"must be a month or a range of them, e.g. january:march or 1:3 (got {value!r})")
    nums = [int(p) if p.isdigit() else _MONTHS.index(p) + 1 for p in parts]
    if len(nums) == 2 and nums[0] > nums[1]:
        raise ValueError(f"month ranges do not wrap past december: split it, e.g. november:december and january:february (got {value!r})")
    return value


def _check_int_range(lo: int, hi: int, example: str):
    def check(value: str) -> str:
        parts = value.split(":")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if not nums or len(parts) > 2 or any(not (lo <= abs(n) <= hi) or n == 0 and lo > 0 for n in nums):
            raise ValueError(f"must be a number or range, e.g. {example} (got {value!r})")
        # Alertmanager's rules: a negative start (counted from the end) needs a negative end; no wrapping.
        if len(nums) == 2 and ((nums[0] < 0 < nums[1]) or (nums[0] > 0) == (nums[1] > 0) and nums[0] > nums[1]):
            raise ValueError(f"the range must not end before it starts, e.g. {example} (got {value!r})")
        return value

    return AfterValidator(check)


def _check_time_zone(value: str) -> str:
    if value in ("UTC", "Local"):
        return value
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone, e.g. Europe/Berlin or UTC (got {value!r})") from None
    return value


class TimeInterval(Strict):
    """One Alertmanager time_interval entry; every field narrows it."""

    times: list[TimeRange] = Field(default_factory=list)
    weekdays: list[Annotated[str, AfterValidator(_check_weekday_range)]] = Field(default_factory=list)
    days_of_month: list[Annotated[str, _check_int_range(1, 31, "1:7 or -1")]] = Field(default_factory=list)
    months: list[Annotated[str, AfterValidator(_check_month_range)]] = Field(default_factory=list)
    years: list[Annotated[str, _check_int_range(1970, 9999, "2026 or 2026:2027")]] = Field(default_factory=list)
    location: Annotated[str, AfterValidator(_check_time_zone)] | None = None


class Watchdog(Strict):
    """The always-firing Watchdog alert, routed to an external dead-man's switch."""

    receiver: Name
    repeat_interval: Interval = "1m"


class TeamMuteWindow(Strict):
    """A maintenance window of one team, narrowed to levels or services of it."""

    interval: Name = Field(description="The time interval (time_intervals) during which notifications are held back.")
    levels: list[Level] | None = Field(None, description="Levels it mutes; default P1, P2 and P3. P0 (the pages) only when listed here.")
    services: list[Name] = Field(default_factory=list, description="Services it mutes; default all of them.")


class MuteWindow(TeamMuteWindow):
    """A maintenance window scoped to levels, teams or services."""

    teams: list[Name] = Field(default_factory=list, description="Teams it mutes; default all of them.")


_MUTES = ("Maintenance windows: a time interval's name mutes levels P1-P3, P0 never; an entry "
          "{interval, levels, teams, services} narrows it, and muting P0 needs levels: [P0, ...].")


class Team(Strict):
    receivers: dict[Level, list[Name]] = Field(default_factory=dict, description="Per-level receivers that replace the policy's for this team's services.")
    mute_time_intervals: list[Union[Name, TeamMuteWindow]] = Field(default_factory=list, description=_MUTES)


# --- services --------------------------------------------------------------


class Tls(Strict):
    ca_file: FileRef | None = None
    cert_file: FileRef | None = None
    key_file: FileRef | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _client_pair(self) -> "Tls":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (a client certificate and its key): set both or neither")
        return self


class Scrape(Strict):
    targets: Annotated[list[HostPort], Field(min_length=1, max_length=limits.MAX_TARGETS)]
    path: Annotated[str, _matches(re.compile(r"^/[^\s?#]*$"), "an absolute URL path", "/api/metrics")] = "/metrics"
    scheme: Literal["http", "https"] = "http"
    interval: ScrapeInterval | None = None
    timeout: Interval | None = None
    labels: dict[LabelName, _LABEL_VALUE] = Field(default_factory=dict, max_length=limits.MAX_LABELS, description="Extra labels on every series of this job.")
    honor_labels: bool = False
    basic_auth: BasicAuth | None = None
    tls: Tls | None = None


class Probe(Strict):
    """A health URL probed through the blackbox exporter."""

    url: ProbeUrl
    name: Annotated[str, _matches(re.compile(r"^[a-z][a-z0-9_-]*$"), "a short lowercase name", "liveness")] | None = None
    module: Literal["http_2xx", "http_post_2xx", "tcp_connect", "icmp", "dns"] | None = Field(None, description="Blackbox module; derived from the URL scheme when omitted.")
    max_duration: Interval | None = Field(None, description="Alert when the probe is slower than this (e.g. 50ms for liveness).")


class LatencySlo(Strict):
    threshold: Interval = Field(description="A request slower than this is bad; should be a histogram bucket boundary.")
    percentile: Percent = Field(95, description="The share of requests (in %) that must be faster than threshold.")


class Slo(Strict):
    availability: Percent | None = Field(None, description="Target share of successful requests, in %, e.g. 99.9.")
    latency: LatencySlo | None = None
    window: SloWindow = defaults.SLO_WINDOW


class Tier(Strict):
    """One tier of a catalogue alert: its own rule, sharing the alert's problem so a firing higher tier mutes the lower."""

    threshold: Threshold
    severity: Level
    for_: For | None = Field(None, alias="for", description="Defaults to the alert's `for`.")
    window: RateWindow | None = Field(None, description="Defaults to the alert's window.")
    name: AlertName | None = Field(None, description="The rule's alert name; default the alert's name followed by the severity, e.g. HostDiskSpaceLowP0.")


class AlertOverride(Strict):
    threshold: Threshold | None = None
    for_: For | None = Field(None, alias="for")
    severity: Level | None = None
    disabled: bool = False
    window: RateWindow | None = Field(None, description=(
        "The rate window of the alert's expression (default 5m): 1m turns 'evictions per 5 minutes' into 'per minute'. "
        "Only alerts that read a rate or an increase have one."))
    min_rate: Rate | None = Field(None, description=(
        "Ratio alerts (error and failure ratios): events per second the service must see over the window before the alert may "
        "fire; 0 turns the guard off. Default 1 request/s for HTTP, 0.1 jobs/s for workers."))
    tiers: Annotated[list[Tier], Field(min_length=1)] | None = Field(None, description=(
        "Several rules of this alert, each with its own threshold, severity and optionally for/window; thresholds must rise "
        "with severity. Replaces threshold and severity."))

    @model_validator(mode="after")
    def _tiers_alone(self) -> "AlertOverride":
        if self.tiers is not None and (self.threshold is not None or self.severity is not None):
            raise ValueError("tiers replace threshold and severity: give each tier its own")
        return self


class Links(Strict):
    runbook_base: Url | None = Field(None, description="Runbook URLs become runbook_base + '/' + alert name (lowercase).")
    dashboard: Url | None = None


class Resources(Strict):
    memory_limit: Bytes | None = Field(None, description="Memory the process may use; saturation alerts compare RSS with it.")
    cpu_limit: Annotated[float, Field(gt=0, le=limits.MAX_THRESHOLD), _YAML_NUMBER] | None = Field(None, description="CPU cores the process may use.")


class _Rule(Strict):
    name: AlertName
    problem: AlertName | None = Field(None, description="Rules sharing a problem are tiers of it: a firing higher severity mutes the lower.")
    severity: Level = "P2"
    for_: For = Field("5m", alias="for")
    summary: Annotated[str, Field(max_length=300)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    unit: Annotated[str, _matches(re.compile(r"^[A-Za-z][A-Za-z0-9:/%._()-]*$"), "a Grafana unit id", "percentunit")] | None = Field(
        None, description="Grafana unit of the rule's dashboard panel (business and service dashboards), e.g. s, bytes, "
                          "percentunit, short; by default percentunit for ratio rules, short otherwise.")


class ThresholdRule(_Rule):
    type: Literal["threshold"]
    expr: PromQL
    op: Comparison = ">"
    threshold: Threshold


class AbsentRule(_Rule):
    type: Literal["absent"]
    metric: MetricName


class StalledRule(_Rule):
    """The counter did not increase for `for` (e.g. nothing synced for 15 minutes)."""

    type: Literal["stalled"]
    metric: MetricName
    for_: Window = Field("15m", alias="for")


class RatioRule(_Rule):
    """sum(rate(numerator)) / sum(rate(denominator)) compared with threshold."""

    type: Literal["ratio"]
    numerator: PromQL
    denominator: PromQL
    window: Window = "5m"
    op: Comparison = "<"
    threshold: Threshold


class NewLabelValueRule(_Rule):
    """A label value never seen in `lookback` appears (e.g. a new error type)."""

    type: Literal["new_label_value"]
    metric: MetricName
    label: LabelName
    lookback: Lookback = "1d"
    severity: Level = "P3"
    for_: For = Field("0s", alias="for")


class IncreaseRule(_Rule):
    """A counter rose by more than `threshold` over `window`, counting a series that first appears as an increase from 0.

    `increase(x[5m]) > 0` misses the first event of a labelled counter created lazily at 1 (no
    earlier sample to compare with); this form fires on that first appearance too.
    """

    type: Literal["increase"]
    metric: PromQL = Field(description="A series selector of one counter, e.g. errors_total{severity=\"error\"}; scoped to the service.")
    window: Window = "5m"
    threshold: Rate = Field(0, description="Events in the window to exceed; 0: any event.")
    by: list[LabelName] = Field(default_factory=list, description="Labels to alert on separately (e.g. [type]); default one alert per service.")
    for_: For = Field("0s", alias="for")


class MeanRule(_Rule):
    """Mean of a histogram (sum/count) over a window compared with threshold, e.g. model confidence."""

    type: Literal["histogram_mean"]
    metric: MetricName
    window: Window = "30m"
    op: Comparison = "<"
    threshold: Threshold


CustomRule = Annotated[
    Union[ThresholdRule, AbsentRule, StalledRule, RatioRule, NewLabelValueRule, MeanRule, IncreaseRule], Field(discriminator="type")
]


DurationUnit = Literal["seconds", "milliseconds"]
_DURATION_UNIT = ("Unit of the {what} histogram's observations and bucket bounds. Omitted: milliseconds when the name ends "
                  "in _ms or _milliseconds, else seconds. Thresholds and SLO latencies stay in seconds either way.")


class HttpMetrics(Strict):
    """Metric and label names an HTTP service exports (Prometheus client defaults)."""

    requests: MetricName = "http_requests_total"
    duration: MetricName = Field("http_request_duration_seconds", description="Histogram base name (without _bucket).")
    status_label: LabelName = "status"
    route_label: LabelName = "route"
    error_status: str = Field("5..", description="Regex on status_label that marks an error.")
    db_pool_size: MetricName | None = Field(None, description="Gauge of the app's database connection pool size, e.g. db_connection_pool_size; enables DbConnectionPoolSaturated.")
    db_pool_available: MetricName | None = Field(None, description="Gauge of idle connections in that pool, e.g. db_connection_pool_available.")
    db_pool_utilization: MetricName | None = Field(None, description=(
        "A single gauge of the pool's use between 0 and 1 (e.g. db_pool_utilization), instead of db_pool_size and "
        "db_pool_available; enables DbConnectionPoolSaturated."))
    db_query_duration: MetricName | None = Field(None, description="Histogram of the app's database query time, e.g. db_query_duration_seconds; enables DbQueryLatencyP95High and DbQueryLatencyP99High.")
    duration_unit: DurationUnit | None = Field(None, description=_DURATION_UNIT.format(what="duration"))
    db_query_duration_unit: DurationUnit | None = Field(None, description=_DURATION_UNIT.format(what="db_query_duration"))

    @model_validator(mode="after")
    def _pool_pair(self) -> "HttpMetrics":
        if (self.db_pool_size is None) != (self.db_pool_available is None):
            raise ValueError("db_pool_size and db_pool_available go together: set both or neither")
        if self.db_pool_utilization is not None and self.db_pool_size is not None:
            raise ValueError("db_pool_utilization replaces db_pool_size and db_pool_available: set one or the other")
        return self


class WorkerMetrics(Strict):
    queue_depth: MetricName = "queue_depth"
    jobs: MetricName = "jobs_total"
    status_label: LabelName = "status"
    failed_value: str = "failed"
    duration: MetricName = "job_processing_duration_seconds"
    duration_unit: DurationUnit | None = Field(None, description=_DURATION_UNIT.format(what="duration"))
    queue_label: LabelName | None = Field("queue", description="Label naming the queue on both queue_depth and jobs; null when the worker has one unlabelled queue.")


class HostSettings(Strict):
    """Which filesystems and devices the host alerts watch (node-exporter labels; regexes are fully anchored)."""

    mountpoints: str = Field(".*", description="Regex of mountpoints the disk-space alerts watch, e.g. /|/data.")
    exclude_fstypes: str = Field(defaults.EXCLUDE_FSTYPES, description="Regex of filesystem types never alerted on (pseudo and read-only image filesystems).")
    exclude_disk_devices: str = Field(defaults.EXCLUDE_DISK_DEVICES, description="Regex of block devices the disk I/O alert ignores.")
    exclude_network_devices: str = Field(defaults.EXCLUDE_NETWORK_DEVICES, description="Regex of network interfaces the network-error alert ignores.")


class Kpi(Strict):
    """A business number worth a panel without an alert (sign-ups per day, orders per hour): the business dashboard shows it."""

    title: Annotated[str, Field(min_length=1, max_length=100)]
    expr: PromQL = Field(description="What to show, e.g. sum(increase(orders_created_total[1h])); queried as written.")
    unit: Annotated[str, _matches(re.compile(r"^[A-Za-z][A-Za-z0-9:/%._()-]*$"), "a Grafana unit id", "short")] = Field(
        "short", description="Grafana unit of the panel, e.g. short, percentunit, currencyEUR, s.")
    description: Annotated[str, Field(max_length=500)] | None = None
    panel: Literal["graph", "stat"] = Field("graph", description="graph: the value over time; stat: the latest value, large.")


class _Service(Strict):
    name: Name
    team: Name
    description: Annotated[str, Field(max_length=500)] | None = None
    scrape: Scrape | None = None
    health: list[Probe] = Field(default_factory=list, max_length=limits.MAX_PROBES)
    alerts: dict[AlertName, AlertOverride] = Field(default_factory=dict, description="Per-alert overrides of the catalogue for this kind.")
    rules: list[CustomRule] = Field(default_factory=list, max_length=limits.MAX_RULES)
    kpis: list[Kpi] = Field(default_factory=list, description="Business numbers shown on the business dashboard, without an alert.")
    links: Links = Links()
    labels: dict[LabelName, _LABEL_VALUE] = Field(default_factory=dict, max_length=limits.MAX_LABELS, description="Extra labels on this service's alerts.")


class HttpService(_Service):
    kind: Literal["http"]
    metrics: HttpMetrics = HttpMetrics()
    slo: Slo | None = None
    resources: Resources = Resources()


class WorkerService(_Service):
    kind: Literal["worker"]
    metrics: WorkerMetrics = WorkerMetrics()
    slo: Slo | None = None
    resources: Resources = Resources()


class PostgresService(_Service):
    kind: Literal["postgres"]


class RedisService(_Service):
    kind: Literal["redis"]
    memory_limit: Bytes | None = Field(None, description=(
        "The memory Redis may use while its maxmemory is 0 (unlimited, Redis' default): RedisMemoryHigh compares used memory "
        "with it. Without it (and without maxmemory) RedisMaxmemoryUnset says the memory alert cannot fire."))


class HostService(_Service):
    kind: Literal["host"]
    host: HostSettings = HostSettings()


class ProbeService(_Service):
    """Only health probes: an external dependency or a service without /metrics."""

    kind: Literal["probe"]


class CustomService(_Service):
    """Any exporter; alerts come from `rules`."""

    kind: Literal["custom"]


Service = Annotated[
    Union[HttpService, WorkerService, PostgresService, RedisService, HostService, ProbeService, CustomService],
    Field(discriminator="kind"),
]


# --- kubernetes ----------------------------------------------------------------

# Kubernetes label keys: an optional DNS-subdomain prefix and a name of at most 63 characters.
_K8S_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_K8S_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class Kubernetes(Strict):
    """The Kubernetes output (monstack render --target kubernetes): Prometheus Operator objects. See docs/kubernetes.md."""

    namespace: Name = Field("monitoring", description="Namespace of every object (where the Prometheus Operator's Prometheus and Alertmanager run).")
    labels: dict[Annotated[str, _matches(_K8S_LABEL_KEY, "a Kubernetes label key", "release")],
                 Annotated[str, _matches(_K8S_LABEL_VALUE, "a Kubernetes label value", "kube-prometheus-stack")]] = Field(
        default_factory=dict, description="Labels on every object, so your Prometheus' rule/scrape/probe selectors pick them up, "
                                          "e.g. release: kube-prometheus-stack for the Helm chart.")
    prometheus: Name = Field("k8s", description="Name of your Prometheus object (kube-prometheus: k8s); the stack's self-scrape selects its pods.")
    alertmanager: Name = Field("main", description="Name of your Alertmanager object (kube-prometheus: main); the stack's self-scrape selects its pods.")
    blackbox_exporter: HostPort = Field("blackbox-exporter:9115", description="host:port of the blackbox exporter the Probe objects probe through.")


class AnyKindService(_Service):
    """A service whose kind is unknown, checked against what every kind shares (the loader reports its other errors
    in the same run). Kind-specific sections are accepted as the kinds that have them spell them."""

    kind: str
    metrics: dict[str, Any] | None = None  # http and worker name different metrics
    slo: Slo | None = None
    resources: Resources = Resources()
    host: HostSettings = HostSettings()


def _severity_map() -> dict[str, Level]:
    return {value: cast(Level, level) for value, level in defaults.SEVERITY_MAP.items()}


class Inventory(Strict):
    """services.yaml: the single source of truth for the monitoring stack."""

    version: Literal[1] = Field(description="Schema version of this file.")
    stack: Stack = Stack()
    receivers: Annotated[dict[Name, Receiver], Field(min_length=1)]
    default_receiver: Name | None = Field(None, description="Catch-all for alerts no level matches; defaults to the first P1 receiver.")
    severities: dict[Level, LevelPolicy]
    time_intervals: dict[Name, Annotated[list[TimeInterval], Field(min_length=1)]] = Field(default_factory=dict)
    mute_time_intervals: list[Union[Name, MuteWindow]] = Field(default_factory=list, description=_MUTES)
    watchdog: Watchdog | None = None
    severity_map: dict[Annotated[str, _matches(re.compile(r"^[A-Za-z0-9_.-]+$"), "a severity label value", "critical")], Level] = Field(
        default_factory=lambda: _severity_map(), description=(
            "Severity label values of rules written elsewhere (rules.d/, community rules) and the level each means; Prometheus "
            "relabels them before Alertmanager routes. Default critical: P0, warning: P2, info: P3."))
    teams: Annotated[dict[Name, Team], Field(min_length=1)]
    services: Annotated[list[Service], Field(min_length=1)]
    extra_scrape_configs: list[dict[str, Any]] = Field(default_factory=list, description=(
        "Prometheus scrape_config entries monstack does not model (service discovery other than static targets, relabelling), "
        "copied into prometheus.yml as written. Secrets only through *_file fields."))
    kubernetes: Kubernetes = Kubernetes()
