"""The stack's own components, one row each: what compose.yaml and the native runner both run.

A row says everything about one component once: its image (pinned in
generator/images/Dockerfile), its Debian package and binaries, its ports, its
health path, its data folder, its flags and environment, the secrets it reads,
what it depends on and when an inventory needs it. The compose renderer
(generator/render/compose.py) and the native runner (generator/runner/native.py)
are loops over this table: adding a component or a flag is one edit here.

Flags and environment are functions of a Place, which says where things are in
the running mode: compose (service names, container paths, /run/secrets) or
native (127.0.0.1 on shifted ports, the state folder, the secrets' real paths).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Callable, Literal
from urllib.parse import urlsplit

from generator import names
from generator.durations import victoria_metrics_retention
from generator.units import parse_bytes

if TYPE_CHECKING:
    from generator.model import Model, Stack


# --- images --------------------------------------------------------------------------------------

def _pinned_images() -> dict[str, str]:
    """component -> image:tag, from the FROM lines of generator/images/Dockerfile."""
    text = resources.files("generator").joinpath("images").joinpath("Dockerfile").read_text()
    return {m.group(2): m.group(1) for m in re.finditer(r"^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", text, re.M | re.I)}


IMAGES = _pinned_images()
SAMPLE_IMAGE = "monstack-demo-exporters:local"  # built from exporters/Dockerfile


def image_ref(pinned: str, mirror: str | None) -> str:
    """The pinned image pulled through a registry mirror: the mirror replaces the registry host (docker.io if none)."""
    if not mirror:
        return pinned
    first, _, rest = pinned.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else pinned
    return f"{mirror.rstrip('/')}/{path}"


# --- where things are ----------------------------------------------------------------------------

class Place:
    """Where a component finds its configuration, data, secrets and peers in one running mode."""

    mode: str
    stack: "Stack"

    def port(self, c: "Component") -> int:
        raise NotImplementedError

    def listen(self, c: "Component") -> str:
        """--web.listen-address style: what the component binds."""
        raise NotImplementedError

    def bind(self, c: "Component") -> str:
        """host:port for programs that need an explicit host."""
        raise NotImplementedError

    def address(self, name: str) -> str:
        """host:port at which the other components reach `name`."""
        raise NotImplementedError

    def cluster_listen(self, c: "Component") -> str:
        """host:port an Alertmanager replica gossips on."""
        raise NotImplementedError

    def cluster_address(self, name: str) -> str:
        """host:port at which the other replicas reach the gossip port of `name`."""
        raise NotImplementedError

    def external_url(self, c: "Component") -> str:
        """The URL people (and links in notifications) use for the component."""
        raise NotImplementedError

    def config(self, c: "Component", rel: str) -> str:
        """Where component c reads the generated file `rel` (a path relative to the output root)."""
        raise NotImplementedError

    def data(self, c: "Component") -> str | None:
        """The component's data folder, None when it keeps no data in this mode."""
        raise NotImplementedError

    def secret(self, ref: str) -> str:
        """Where a secret file reference is read from."""
        raise NotImplementedError

    def secret_value(self, ref: str) -> str:
        """The secret itself, for a program that reads it only from its environment (native mode alone:
        nothing rendered may hold it)."""
        raise NotImplementedError

    def logs(self) -> str | None:
        """The folder process logs go to (native), None where the runtime collects them."""
        return None

    def binary(self, c: "Component") -> str:
        """The executable that runs c natively."""
        raise NotImplementedError


# --- the table -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    """A generated folder or file (relative to the output root) mounted read-only into a compose service."""

    source: str
    target: str


DATA: Literal["data"] = "data"  # in Component.volumes: the component's data volume goes here

Args = Callable[["Component", Place], "list[str] | None"]
Env = Callable[["Component", Place], "dict[str, str]"]
Secrets = Callable[["Model"], "list[str]"]


def _no_args(c: "Component", p: Place) -> list[str] | None:
    return None


def _no_env(c: "Component", p: Place) -> dict[str, str]:
    return {}


def _no_secrets(model: "Model") -> list[str]:
    return []


@dataclass(frozen=True)
class Component:
    name: str
    port: int  # its port inside the compose network (and the service address other components use)
    native_port: int  # its 127.0.0.1 port natively, clear of the Debian packages' system services
    stage: int  # native start order: databases 0, targets 1, Alertmanager 2, Prometheus 3, Grafana 4
    health: str  # HTTP path answering 200 once ready; "tcp" when an open port is all it offers
    args: Args = _no_args  # flags (after the executable); None: the image's own command
    env: Env = _no_env
    secrets: Secrets = _no_secrets  # secret file references it reads
    image: str | None = None  # image:tag; None: built locally (the sample exporters)
    binaries: tuple[str, ...] = ()  # native executables, the first found wins
    package: str | None = None  # the Debian package shipping binaries[0]
    module: str | None = None  # natively run as `python -m module` instead of a binary
    volume: str | None = None  # container path of its data volume (compose)
    volumes: tuple[Mount | Literal["data"], ...] = ()  # compose mounts in order; DATA places the data volume
    depends: tuple[str, ...] = ()  # needs these to run (pulled in when it runs) and healthy first
    always: bool = False  # every stack runs it; the others run when the inventory addresses them
    publish: Literal["ui", "port", "native"] | None = None  # compose: published on 127.0.0.1 (see render/compose.py)
    start_period: str = "20s"  # compose healthcheck grace after start
    compose_health: tuple[str, ...] | None = None  # compose healthcheck command when an HTTP GET of `health` will not do
    # compose healthcheck when stack.web_auth puts basic auth in front of `health` (its arguments: c and the Place)
    compose_health_auth: Callable[["Component", Place], tuple[str, ...]] | None = None
    compose_extra: tuple[tuple[str, object], ...] = ()  # further compose service keys (pid, cap_add, extra volumes)
    ui: str | None = None  # path of its web UI, None when it has none
    # False: docker compose only. It watches containers, and natively nothing runs in one: no Debian binary,
    # native_port unused, the native runner and the native configuration leave it out.
    native: bool = True
    # compose: in the host's network namespace (host metrics as the host sees them). It listens on 127.0.0.1 and on
    # the Docker host gateway; the other containers reach it at names.DOCKER_HOST_NAME (extra_hosts: host-gateway).
    host_network: bool = False
    # High availability: how many the inventory runs (stack.replicas), None for one. Replica k > 1 is the
    # row `<name>-k`, its own process or compose service, on its own native port.
    replicas: Callable[["Stack"], int] | None = None
    replica_native_ports: tuple[int, ...] = ()  # native ports of replicas 2, 3, ...
    cluster_port: int | None = None  # Alertmanager's gossip port (compose, inside the network)
    native_cluster_ports: tuple[int, ...] = ()  # its native gossip ports, replica 1 first
    # Generated files (path prefixes under the output root) it loads again on SIGHUP: `up` and
    # `apply` reload it only when one of them changed. Empty: it has no reloadable configuration.
    reloads: tuple[str, ...] = ()
    replica: int = 1  # which replica this row is
    base: str | None = None  # the table row a replica row derives from

    @property
    def sample(self) -> bool:
        return self.module is not None

    @property
    def family(self) -> str:
        """The table row's name: the same for every replica."""
        return self.base or self.name

    def count(self, stack: "Stack") -> int:
        return self.replicas(stack) if self.replicas else 1

    @property
    def native_cluster_port(self) -> int:
        return self.native_cluster_ports[self.replica - 1]


def retention_bytes(size: str) -> str:
    """--storage.tsdb.retention.size: Prometheus reads KB/MB/GB as powers of 2; plain bytes keep the inventory's meaning."""
    return f"{parse_bytes(size)}B"


# Prometheus restores the pending and firing state of an alert after a restart only when its `for` is at least
# this long (default 10m): with a shorter `for`, a firing alert went back to pending for its whole `for`, long
# enough for Alertmanager to time it out and send a false "resolved", then a second page. 0s restores every
# alert: a firing one fires again at the first evaluation after the restart, a pending one resumes its `for`.
FOR_GRACE_PERIOD = "0s"


def _prometheus_args(c: Component, p: Place) -> list[str]:
    st = p.stack
    out = [f"--config.file={p.config(c, names.prometheus_config(c.replica))}", f"--storage.tsdb.path={p.data(c)}",
           f"--storage.tsdb.retention.time={st.retention_time}"]
    if st.retention_size:
        out.append(f"--storage.tsdb.retention.size={retention_bytes(st.retention_size)}")
    # No --web.enable-lifecycle: /-/reload and /-/quit would answer any web page's POST (a simple request needs no
    # preflight); the runners reload by SIGHUP. CORS admits only Prometheus' own origin (default: every origin, so
    # any page could read the API); Grafana queries server-side and needs none.
    return out + [f"--rules.alert.for-grace-period={FOR_GRACE_PERIOD}", f"--web.cors.origin={cors_origin(p.external_url(c))}",
                  f"--web.external-url={p.external_url(c)}", f"--web.listen-address={p.listen(c)}"] + _web_config(p)


def _web_config(p: Place) -> list[str]:
    """stack.web_auth: basic auth on every path (exporter-toolkit's web config: its bcrypt hash, written at `up`)."""
    return [f"--web.config.file={p.secret(names.WEB_CONFIG_FILE)}"] if p.stack.web_auth else []


def web_auth_secrets(model: "Model") -> list[str]:
    """What a server behind stack.web_auth reads: the web config; and the password its clients send."""
    auth = model.stack.web_auth
    return [auth.password_file, names.WEB_CONFIG_FILE] if auth else []


def web_password(model: "Model") -> list[str]:
    """What a client of the servers behind stack.web_auth reads: the password."""
    auth = model.stack.web_auth
    return [auth.password_file] if auth else []


def _promtool_ready(c: "Component", p: Place) -> tuple[str, ...]:
    # promtool in the image checks /-/ready with the user name and password file of the rendered client config:
    # the password stays out of the command line (a healthcheck's argv is visible on the host).
    return ("CMD", "promtool", "check", "ready", f"--http.config.file={p.config(c, 'prometheus/' + names.WEB_CLIENT_CONFIG)}",
            f"--url=http://127.0.0.1:{c.port}")


def _amtool_ready(c: "Component", p: Place) -> tuple[str, ...]:
    # Alertmanager's image has no promtool: amtool asks its API for the cluster status (200 once it serves).
    return ("CMD", "amtool", f"--http.config.file={p.config(c, 'alertmanager/' + names.WEB_CLIENT_CONFIG)}",
            f"--alertmanager.url=http://127.0.0.1:{c.port}", "cluster", "show")


def cors_origin(external_url: str) -> str:
    """--web.cors.origin (a fully anchored RE2 regex) admitting the component's own origin alone."""
    parts = urlsplit(external_url)
    return re.escape(f"{parts.scheme}://{parts.netloc}")


def prometheus_secrets(model: "Model") -> list[str]:
    """Secret files Prometheus reads: scrape basic auth and TLS files, remote_write credentials."""
    refs: list[str] = web_auth_secrets(model)
    for s in model.services:
        if s.scrape and s.scrape.basic_auth:
            refs.append(s.scrape.basic_auth.password_file)
        if s.scrape and s.scrape.tls:
            refs += [f for f in (s.scrape.tls.ca_file, s.scrape.tls.cert_file, s.scrape.tls.key_file) if f]
    for rw in model.stack.remote_write:
        if rw.basic_auth:
            refs.append(rw.basic_auth.password_file)
        if rw.bearer_token_file:
            refs.append(rw.bearer_token_file)
    return sorted(set(refs))


def _alertmanager_args(c: Component, p: Place) -> list[str]:
    out = [f"--config.file={p.config(c, names.ALERTMANAGER_CONFIG)}", f"--storage.path={p.data(c)}",
           f"--web.external-url={p.external_url(c)}", f"--web.listen-address={p.listen(c)}"]
    out += _web_config(p)
    peers = [r for r in replica_names(c, p.stack) if r != c.name]
    if not peers:
        return out + ["--cluster.listen-address="]  # one replica: no gossip
    # A cluster: the replicas share silences and the notification log by gossip, so the one that notifies
    # first tells the others (which wait --cluster.peer-timeout per position before notifying themselves).
    out.append(f"--cluster.listen-address={p.cluster_listen(c)}")
    if p.mode == "native":
        out.append(f"--cluster.advertise-address={p.cluster_address(c.name)}")
    return out + [f"--cluster.peer={p.cluster_address(r)}" for r in peers]


def _grafana_env(c: Component, p: Place) -> dict[str, str]:
    env = {
        "GF_SECURITY_ADMIN_USER": "admin",
        "GF_SECURITY_ADMIN_PASSWORD__FILE": p.secret(names.GRAFANA_ADMIN_PASSWORD_FILE),
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_AUTH_DISABLE_LOGIN_FORM": "false",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_SERVER_ROOT_URL": p.external_url(c),
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    }
    if p.mode == "native":
        # Natively Grafana finds nothing by convention: every path points into the state folder.
        data = p.data(c)
        host, port = p.bind(c).rsplit(":", 1)
        env.update({"GF_PATHS_DATA": f"{data}", "GF_PATHS_LOGS": f"{p.logs()}", "GF_PATHS_PLUGINS": f"{data}/plugins",
                    "GF_PATHS_PROVISIONING": p.config(c, "grafana/provisioning"), "GF_SERVER_HTTP_ADDR": host,
                    "GF_SERVER_HTTP_PORT": port})
    return env


def _grafana_args(c: Component, p: Place) -> list[str] | None:
    if p.mode == "compose":
        return None
    # Debian-style installs keep conf/defaults.ini two levels above the binary; others under /usr/share/grafana.
    from pathlib import Path

    home = Path(p.binary(c)).resolve().parent.parent
    return [f"--homepath={home if (home / 'conf' / 'defaults.ini').is_file() else Path('/usr/share/grafana')}"]


def _node_exporter_args(c: Component, p: Place) -> list[str]:
    if p.mode == "compose":
        # As node_exporter's README runs it in Docker: host network and pid namespaces, the host's root read-only at /host.
        # 127.0.0.1 for the host itself; the host gateway address (on Docker's bridge, not the LAN) for Prometheus,
        # whose container cannot reach the host's loopback. The runner sets the variable from `docker network inspect bridge`.
        gateway = f"${{{names.HOST_GATEWAY_ENV}:-{names.HOST_GATEWAY_DEFAULT}}}"
        return ["--path.rootfs=/host", f"--web.listen-address=127.0.0.1:{c.port}", f"--web.listen-address={gateway}:{c.port}"]
    return [f"--web.listen-address={p.listen(c)}", f"--collector.textfile.directory={p.data(c)}"]


def _cadvisor_args(c: Component, p: Place) -> list[str]:
    # Docker containers only, named by their compose project and service rather than every label they carry
    # (labels and environment as series labels would multiply the series); housekeeping at the scrape interval.
    return ["--docker_only=true", "--store_container_labels=false",
            f"--whitelisted_container_labels={names.COMPOSE_PROJECT_LABEL},{names.COMPOSE_SERVICE_LABEL}",
            f"--housekeeping_interval={max(1, round(p.stack.scrape_interval.seconds))}s", f"--port={c.port}"]


# Every admin endpoint VictoriaMetrics guards with a key (all one key): deleting series, snapshots, forced merges and
# flushes, the rollup cache reset, and the pages that show its configuration, flags and profiles.
VICTORIA_METRICS_AUTH_KEYS = ("deleteAuthKey", "snapshotAuthKey", "forceMergeAuthKey", "forceFlushAuthKey",
                              "search.resetCacheAuthKey", "configAuthKey", "flagsAuthKey", "pprofAuthKey")


def _victoria_metrics_args(c: Component, p: Place) -> list[str]:
    st = p.stack
    out = [f"-storageDataPath={p.data(c)}",
           f"-retentionPeriod={victoria_metrics_retention(st.long_term_retention or st.retention_time)}",
           f"-httpListenAddr={p.listen(c)}"]
    auth = st.web_auth
    if p.mode == "compose":
        # The pinned image reads a flag's value from a file (file://): the key stays out of compose.yaml and argv.
        key = p.secret(names.VICTORIA_METRICS_AUTH_KEY_FILE)
        out += [f"-{flag}=file://{key}" for flag in VICTORIA_METRICS_AUTH_KEYS]
        # stack.web_auth: basic auth on its query and write APIs (/health and /metrics stay open).
        return out + ([f"-httpAuth.username={auth.username}", f"-httpAuth.password=file://{p.secret(auth.password_file)}"]
                      if auth else [])
    # Debian's 1.79 has no file://: the keys (and the basic auth password) come from the environment, never the
    # command line others can read.
    return out + ["-envflag.enable"]


def _victoria_metrics_env(c: Component, p: Place) -> dict[str, str]:
    if p.mode == "compose":
        return {}
    key = p.secret_value(names.VICTORIA_METRICS_AUTH_KEY_FILE)
    env = {flag.replace(".", "_"): key for flag in VICTORIA_METRICS_AUTH_KEYS}
    if auth := p.stack.web_auth:
        env.update({"httpAuth_username": auth.username, "httpAuth_password": p.secret_value(auth.password_file)})
    return env


def _victoria_metrics_key(model: "Model") -> list[str]:
    return [names.VICTORIA_METRICS_AUTH_KEY_FILE] + web_password(model)


def _postgres_password(model: "Model") -> list[str]:
    return [names.POSTGRES_PASSWORD_FILE]


def _postgres_exporter_env(c: Component, p: Place) -> dict[str, str]:
    return {"DATA_SOURCE_URI": f"{p.address('postgres')}/postgres?sslmode=disable", "DATA_SOURCE_USER": "postgres",
            "DATA_SOURCE_PASS_FILE": p.secret(names.POSTGRES_PASSWORD_FILE)}


def _postgres_args(c: Component, p: Place) -> list[str] | None:
    if p.mode == "compose":
        return None  # the image's entrypoint creates the cluster from POSTGRES_* and runs it
    # TCP on 127.0.0.1 only; no unix socket, so no socket folder to share with the system cluster.
    return ["-D", f"{p.data(c)}", "-p", str(p.port(c)), "-c", f"listen_addresses={p.bind(c).rsplit(':', 1)[0]}",
            "-c", "unix_socket_directories=", "-c", "logging_collector=off"]


def _redis_args(c: Component, p: Place) -> list[str]:
    if p.mode == "compose":
        return ["redis-server", "--save", "", "--appendonly", "no"]
    host, port = p.bind(c).rsplit(":", 1)
    return ["--port", port, "--bind", host, "--save", "", "--appendonly", "no", "--dir", f"{p.data(c)}",
            "--daemonize", "no", "--protected-mode", "yes"]


def _sample_args(c: Component, p: Place) -> list[str]:
    return [c.name, "--listen", p.bind(c), "--control-token-file", p.secret(names.CONTROL_TOKEN_FILE)]


def _control_token(model: "Model") -> list[str]:
    return [names.CONTROL_TOKEN_FILE]


def _listen_only(c: Component, p: Place) -> list[str]:
    return [f"--web.listen-address={p.listen(c)}"]


def _pushgateway_args(c: Component, p: Place) -> list[str]:
    data = p.data(c)
    return [f"--web.listen-address={p.listen(c)}"] + ([f"--persistence.file={data}/pushgateway.db"] if data else [])


def _sample(name: str, native_port: int) -> Component:
    return Component(name, 8080, native_port, stage=1, health="/health", args=_sample_args, module="exporters",
                     secrets=_control_token,
                     publish="native", start_period="10s",
                     compose_health=("CMD", "python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen("
                                     "'http://127.0.0.1:8080/health', timeout=3).status != 200)"))


# Table order is compose.yaml's service order.
TABLE: tuple[Component, ...] = (
    Component("prometheus", 9090, 19090, stage=3, health="/-/ready", args=_prometheus_args, secrets=prometheus_secrets,
              image=IMAGES["prometheus"], binaries=("prometheus",), package="prometheus", volume="/prometheus",
              volumes=(Mount("prometheus", "/etc/prometheus"), DATA), always=True, publish="ui",
              start_period="60s",  # TSDB replay after a restart takes a while
              compose_health_auth=_promtool_ready,
              ui="/", replicas=lambda st: st.prometheus_replicas, replica_native_ports=(19092,),
              reloads=(names.PROMETHEUS_CONFIG, names.RULES_DIR + "/")),
    Component("alertmanager", 9093, 19093, stage=2, health="/-/ready", args=_alertmanager_args,
              secrets=lambda model: sorted(set(model.receiver_secret_files() + web_auth_secrets(model))),
              compose_health_auth=_amtool_ready, image=IMAGES["alertmanager"],
              binaries=("prometheus-alertmanager", "alertmanager"), package="prometheus-alertmanager", volume="/alertmanager",
              volumes=(Mount("alertmanager", "/etc/alertmanager"), DATA), always=True, publish="ui", ui="/",
              replicas=lambda st: st.alertmanager_replicas, replica_native_ports=(19095, 19097, 19101, 19103),
              cluster_port=9094, native_cluster_ports=(19094, 19096, 19098, 19102, 19104),
              reloads=(names.ALERTMANAGER_CONFIG, names.ALERTMANAGER_TEMPLATES_DIR + "/")),
    Component("grafana", 3000, 13000, stage=4, health="/api/health", args=_grafana_args, env=_grafana_env,
              secrets=lambda model: [names.GRAFANA_ADMIN_PASSWORD_FILE] + web_password(model), image=IMAGES["grafana"], binaries=("grafana-server",),
              volume="/var/lib/grafana",
              volumes=(DATA, Mount("grafana/provisioning", "/etc/grafana/provisioning"),
                       Mount("grafana/dashboards", names.GRAFANA_DASHBOARDS_MOUNT)),
              depends=("prometheus",), always=True, publish="ui",
              start_period="60s",  # first start runs the database migrations
              ui="/"),
    Component("node-exporter", 9100, 19100, stage=1, health="/", args=_node_exporter_args, image=IMAGES["node-exporter"],
              binaries=("prometheus-node-exporter", "node_exporter"), package="prometheus-node-exporter", host_network=True,
              compose_extra=(("pid", "host"), ("volumes", ["/:/host:ro,rslave"]))),
    # Container CPU and memory under docker compose (the infrastructure dashboard's Containers section).
    Component("cadvisor", 8080, 0, stage=1, health="/healthz", args=_cadvisor_args, image=IMAGES["cadvisor"], native=False,
              always=True, publish="port", ui="/containers/",
              compose_extra=(("volumes", ["/:/rootfs:ro", "/var/run:/var/run:ro", "/sys:/sys:ro", "/var/lib/docker/:/var/lib/docker:ro",
                                          "/dev/disk/:/dev/disk:ro"]),)),
    Component("blackbox-exporter", 9115, 19115, stage=1, health="/-/healthy",
              args=lambda c, p: [f"--config.file={p.config(c, names.BLACKBOX_CONFIG)}", f"--web.listen-address={p.listen(c)}"],
              image=IMAGES["blackbox-exporter"], binaries=("prometheus-blackbox-exporter", "blackbox_exporter"),
              package="prometheus-blackbox-exporter", volumes=(Mount(names.BLACKBOX_CONFIG, "/etc/blackbox_exporter/config.yml"),),
              always=True, compose_extra=(("cap_add", ["NET_RAW"]),),  # icmp probes
              reloads=(names.BLACKBOX_CONFIG,)),
    _sample("demo-web", 18081),
    _sample("demo-worker", 18082),
    _sample("demo-business", 18083),
    Component("postgres-exporter", 9187, 19187, stage=1, health="/", args=_listen_only, env=_postgres_exporter_env,
              secrets=_postgres_password, image=IMAGES["postgres-exporter"],
              binaries=("prometheus-postgres-exporter", "postgres_exporter"), package="prometheus-postgres-exporter",
              depends=("postgres",)),
    Component("redis-exporter", 9121, 19121, stage=1, health="/health", args=_listen_only,
              env=lambda c, p: {"REDIS_ADDR": f"redis://{p.address('redis')}"}, image=IMAGES["redis-exporter"],
              binaries=("prometheus-redis-exporter", "redis_exporter"), package="prometheus-redis-exporter", depends=("redis",)),
    Component("pushgateway", 9091, 19091, stage=1, health="/-/ready", args=_pushgateway_args, image=IMAGES["pushgateway"],
              binaries=("prometheus-pushgateway", "pushgateway"), package="prometheus-pushgateway",
              publish="port",  # clients push to it from outside the compose network
              ui="/"),
    Component("victoria-metrics", 8428, 18428, stage=1, health="/health", args=_victoria_metrics_args,
              env=_victoria_metrics_env, secrets=_victoria_metrics_key,
              image=IMAGES["victoria-metrics"], binaries=("victoria-metrics", "victoria-metrics-prod"), package="victoria-metrics",
              volume="/storage", volumes=(DATA,)),
    # Throwaway databases the postgres/redis exporters of the demo stack watch.
    Component("postgres", 5432, 15432, stage=0, health="tcp", args=_postgres_args,
              env=lambda c, p: {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD_FILE": p.secret(names.POSTGRES_PASSWORD_FILE)}
              if p.mode == "compose" else {},
              secrets=_postgres_password, image=IMAGES["postgres"], binaries=("postgres",), package="postgresql",
              volume="/var/lib/postgresql/data", volumes=(DATA,),
              compose_health=("CMD", "pg_isready", "-U", "postgres", "-d", "postgres")),
    Component("redis", 6379, 16379, stage=0, health="tcp", args=_redis_args, image=IMAGES["redis"], binaries=("redis-server",),
              package="redis-server", compose_health=("CMD", "redis-cli", "ping")),
)
BY_NAME: dict[str, Component] = {c.name: c for c in TABLE}
SAMPLE_EXPORTERS = tuple(c.name for c in TABLE if c.sample)
assert set(IMAGES) == {c.name for c in TABLE if not c.sample}, "generator/images/Dockerfile and the component table disagree"


def get(name: str) -> Component:
    """A row of the table, or a replica row (`alertmanager-2`) derived from one."""
    if name in BY_NAME:
        return BY_NAME[name]
    base, _, k = name.rpartition("-")
    row = BY_NAME.get(base)
    if row is None or not k.isdigit() or not 2 <= int(k) <= len(row.replica_native_ports) + 1:
        raise KeyError(name)
    return _replica(row.name, int(k))


@functools.lru_cache(maxsize=None)
def _replica(row: str, k: int) -> Component:
    c = BY_NAME[row]
    # A Prometheus replica reads its own configuration file (names.prometheus_config); the rest is shared.
    reloads = tuple(names.prometheus_config(k) if f == names.PROMETHEUS_CONFIG else f for f in c.reloads)
    return dataclasses.replace(c, name=f"{c.name}-{k}", native_port=c.replica_native_ports[k - 2], replica=k, base=c.name,
                               reloads=reloads)


def replica_names(c: Component, stack: "Stack") -> list[str]:
    """Every replica of c's row the inventory runs, replica 1 (the row's own name) first."""
    row = BY_NAME[c.family]
    return [row.name] + [f"{row.name}-{k}" for k in range(2, row.count(stack) + 1)]


# --- which components an inventory runs ----------------------------------------------------------

def hostport(text: str) -> tuple[str, int | None]:
    """(host, port) of a host:port or a URL; port None when the URL has none."""
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or ""), port


def _addresses(model: "Model") -> list[str]:
    found: list[str] = []
    for s in model.services:
        if s.scrape:
            found += s.scrape.targets
        found += [p.url for p in s.probes]
    found += [rw.url for rw in model.stack.remote_write]
    return found


def own_scrape_jobs(model: "Model") -> set[str]:
    """The scrape jobs the inventory names: one per scraped service, and its extra_scrape_configs."""
    return {names.service_job(s.name) for s in model.services if s.scrape} | {
        str(job.get("job_name")) for job in model.extra_scrape_configs}


def needed_components(model: "Model", compose: bool = False) -> list[str]:
    """The components this inventory runs, in table order: the ones it addresses by their compose
    address (demo-web:8080, http://victoria-metrics:8428/...), what those depend on, and the ones
    every stack runs. compose: under docker compose, with the compose-only components (cAdvisor);
    the native runner and the native configuration leave those out, and so does an inventory with a
    scrape job of the component's name that scrapes one of its own (cadvisor.internal:8080)."""
    own = own_scrape_jobs(model)
    wanted = {c.name for c in TABLE if c.always and (c.native or c.name not in own)}
    for address in _addresses(model):
        host, port = hostport(address)
        if host in BY_NAME and port in (None, BY_NAME[host].port):
            wanted.add(host)
    for c in TABLE:
        if c.name in wanted:
            wanted.update(c.depends)
    return [r for c in TABLE if c.name in wanted and (compose or c.native) for r in replica_names(c, model.stack)]
