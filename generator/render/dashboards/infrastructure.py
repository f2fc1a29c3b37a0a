"""Infrastructure: CPU, memory, disk and network per host, for every host (node-exporter) service; under docker
compose, CPU and memory per container as cAdvisor reads them (natively nothing runs in a container)."""
from __future__ import annotations

from typing import Any

from generator import fleet, names
from generator.model import Model
from generator.render.dashboards import builder as b
from generator.render.dashboards import panels as p

NAME = names.DASHBOARD_INFRASTRUCTURE


def uid() -> str:
    return names.dashboard_uid(NAME)


def containers_section() -> b.Section:
    """CPU and memory per container (cAdvisor, compose only): the stack's own containers and any other on the Docker host.
    The job is the stack's cAdvisor, or the inventory's own scrape job of that name; one stack, one Docker host, one env."""
    scope = p.Scope({"job": names.SELF_CADVISOR_JOB})
    named = {"name": ""}  # the unnamed series are cgroups outside any container (the root, system slices)
    cpu = f"sum by (name) (rate({scope.raw('container_cpu_usage_seconds_total', neq=named)}[{p.RATE}]))"
    memory = f"sum by (name) ({scope.raw('container_memory_working_set_bytes', neq=named)})"
    return b.Section("Containers", [
        b.timeseries("Container CPU", "CPU time used per second by each container on the Docker host, in cores (cAdvisor).",
                     [b.Query(cpu, "{{name}}")], unit="short", w=12, decimals=2),
        b.timeseries("Container memory", "Working set of each container (what the kernel would not reclaim first; "
                     "its memory limit applies to this), from cAdvisor.", [b.Query(memory, "{{name}}")], unit="bytes", w=12),
    ])


def render(model: Model, containers: bool = False) -> dict[str, Any] | None:
    """containers: the stack runs under docker compose, with cAdvisor."""
    found = p.hosts(model)
    if not found:
        if not containers:
            return None
        return b.dashboard(uid(), f"{model.stack.name} / Infrastructure", source=model.source, tags=[NAME],
                           description="Containers on the Docker host (cAdvisor): CPU and memory per container.",
                           sections=[containers_section()], variables=[],
                           links=[b.dashboard_link("Overview", names.dashboard_uid(names.DASHBOARD_OVERVIEW))])
    # Only series from host services: other jobs may expose node_* metrics of their own.
    host_services = "|".join(s.name for s in found)
    uname = f'node_uname_info{{{names.SERVICE}=~"{host_services}"}}'
    variables = [
        b.query_variable("env", "Environment", b.label_values(uname, names.ENV), multi=False),
        b.query_variable("service", "Host group", b.label_values(f'{uname[:-1]}, {names.ENV}=~"$env"}}', names.SERVICE)),
        b.query_variable("instance", "Host", b.label_values(f'{uname[:-1]}, {names.SERVICE}=~"$service"}}', "instance")),
    ]
    scope = p.Scope({}, {names.ENV: "$env", names.SERVICE: "$service"}, instance=True)
    up = f"min by (instance) ({scope.raw('up', eq={names.PROBE: ''})})"
    boot = scope.raw("node_boot_time_seconds")
    status = [
        b.stat("Hosts", "Whether Prometheus can scrape each host's node-exporter.", [b.Query(up, "{{instance}}")], unit="none",
               w=12, h=4, mappings=b.UP_DOWN, steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name"),
        b.stat("Uptime", "Time since each host booted; a small value means a recent reboot.",
               [b.Query(f"time() - max by (instance) ({boot})", "{{instance}}")], unit="s", w=12, h=4,
               steps=b.thresholds((None, b.YELLOW), (3600, b.GREEN)), text_mode="value_and_name"),
    ]
    sections = [b.Section("Hosts", status), b.Section("CPU, memory, disk, network", p.host_panels(scope))]
    if containers:
        sections.append(containers_section())
    links = [b.dashboard_link("Overview", names.dashboard_uid(names.DASHBOARD_OVERVIEW))]
    if fleet.enabled(model):
        shapes = {fleet.shape_of(model, s.name).uid: fleet.shape_of(model, s.name) for s in found}
        links += [b.dashboard_link(sh.name, uid) for uid, sh in shapes.items()]
    else:
        links += [b.dashboard_link(s.name, names.service_dashboard_uid(s.name)) for s in found]
    return b.dashboard(uid(), f"{model.stack.name} / Infrastructure", source=model.source, tags=[NAME],
                       description="Hosts (node-exporter): CPU, memory, disk and network per host." +
                                   (" Containers on the Docker host (cAdvisor): CPU and memory per container." if containers else ""),
                       sections=sections, variables=variables, links=links)
