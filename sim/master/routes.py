"""The master's HTTP endpoints: Mesos' operator endpoints and the sim's internal ones.

Internal (documented in sim/README.md, not Mesos API): `/sim/v1/agents/{register,heartbeat}`,
`/sim/v1/frameworks/...`, `/sim/v1/log/{recover,promise,write,state}` (replica to replica),
`GET /sim/v1/log` (the log audit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sim import maintenance as mt
from sim import masterinfo
from sim import resources as res
from sim.httputil import error, json_response, read_json
from sim.master import auth, views
from sim.master.registry import MasterState, Refused, Unknown
from sim.tasks import Task

if TYPE_CHECKING:
    from sim.master.server import Master

log = logging.getLogger("sim.master")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def redirect_location(leader: dict[str, Any], path: str) -> str:
    return f"//{masterinfo.advertised(leader)}{path}"


def not_leader(master: Master, path: str) -> web.Response:
    if master.leader is None:
        return web.Response(status=503, text="No leader elected")
    if master.is_leader:
        # src/master/http.cpp: "Master has not finished recovery" (write endpoints).
        return web.Response(status=503, text="Master has not finished recovery")
    return web.Response(status=307, headers={"Location": redirect_location(master.leader, path)})


def build(master: Master) -> web.Application:
    def leading(
        fn: Callable[[web.Request, MasterState], Awaitable[web.StreamResponse]],
        *,
        readonly: bool = False,
    ) -> Handler:
        """Leader only (followers redirect). A leader elected in ZooKeeper that has not
        recovered its registry serves read-only endpoints from its empty in-memory state
        (src/master/http.cpp state(), slaves(), ... check only `elected()`), and 503 to
        the rest. A registry change is committed to the log before the answer."""

        async def handler(request: web.Request) -> web.StreamResponse:
            state = master.state
            if state is None:
                if readonly and master.is_leader:
                    return await fn(request, MasterState(master.master_id))
                return not_leader(master, request.path_qs)
            async with master.lock:
                response = await fn(request, state)
                await master.commit()
                return response

        return handler

    async def redirect(request: web.Request) -> web.StreamResponse:
        if master.leader is None:
            return web.Response(status=503, text="No leader elected")
        return web.Response(status=307, headers={"Location": redirect_location(master.leader, "")})

    async def health(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def metrics(request: web.Request) -> web.StreamResponse:
        snap = views.metrics(
            master.state,
            master.identity,
            time.time(),
            elected=master.is_leader,
            log_recovered=master.log.recovered.is_set(),
            extra=master.log_metrics(),
        )
        return json_response(snap)

    async def state(request: web.Request, ms: MasterState) -> web.StreamResponse:
        return json_response(views.state(ms, master.identity, master.leader, master.elected_time))

    async def summary(request: web.Request, ms: MasterState) -> web.StreamResponse:
        return json_response(views.state_summary(ms, master.identity))

    async def slaves(request: web.Request, ms: MasterState) -> web.StreamResponse:
        full = views.state(ms, master.identity, master.leader, master.elected_time)
        return json_response(
            {"slaves": full["slaves"], "recovered_slaves": full["recovered_slaves"]}
        )

    async def frameworks(request: web.Request, ms: MasterState) -> web.StreamResponse:
        full = views.state(ms, master.identity, master.leader, master.elected_time)
        return json_response({"frameworks": full["frameworks"], "completed_frameworks": []})

    async def tasks(request: web.Request, ms: MasterState) -> web.StreamResponse:
        all_tasks = list(ms.tasks.values()) + list(ms.completed)
        return json_response({"tasks": [t.to_json() for t in all_tasks]})

    async def get_schedule(request: web.Request, ms: MasterState) -> web.StreamResponse:
        return json_response(ms.maintenance.schedule)

    async def post_schedule(request: web.Request, ms: MasterState) -> web.StreamResponse:
        try:
            ms.update_schedule(await read_json(request))
        except mt.MaintenanceError as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(status=200)

    async def machine_down(request: web.Request, ms: MasterState) -> web.StreamResponse:
        try:
            gone = ms.machine_down(mt.parse_machine_ids(await read_json(request)))
        except mt.MaintenanceError as exc:
            return web.Response(status=400, text=str(exc))
        await master.commit()  # the registry first, then the agents are told
        for agent in gone:
            master.spawn(master.call_agent(agent.url + "/sim/v1/shutdown", {}))
        return web.Response(status=200)

    async def machine_up(request: web.Request, ms: MasterState) -> web.StreamResponse:
        try:
            ms.machine_up(mt.parse_machine_ids(await read_json(request)))
        except mt.MaintenanceError as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(status=200)

    async def maintenance_status(request: web.Request, ms: MasterState) -> web.StreamResponse:
        return json_response(views.maintenance_status(ms))

    def authenticated(kind: str, required: bool, fn: Handler) -> Handler:
        """Mesos authenticates an agent or framework before it may register (docs/
        authentication.md); refused: 401 and the registration is not processed."""

        async def handler(request: web.Request) -> web.StreamResponse:
            ok, reason, _ = auth.check(
                request.headers.get("Authorization"), master.config.credentials, required
            )
            if not ok:
                log.warning("Refusing registration of %s at %s: %s", kind, request.remote, reason)
                return error(401, reason)
            return await fn(request)

        return handler

    # ------------------------------------------------------------------ internal
    async def agent_register(request: web.Request, ms: MasterState) -> web.StreamResponse:
        body = await read_json(request)
        try:
            ports = res.parse_ports(f"ports:{body['ports']}") if body.get("ports") else None
        except ValueError as exc:
            return error(400, str(exc))
        try:
            agent_id, acked = ms.register_agent(
                body.get("agent_id") or None,
                str(body["hostname"]),
                str(body["ip"]),
                int(body["port"]),
                {k: float(v) for k, v in body["resources"].items()},
                [Task.from_json(t) for t in body.get("tasks", [])],
                ports,
            )
        except Refused as exc:
            return error(exc.status, str(exc))
        return json_response({"agent_id": agent_id, "master_id": master.master_id, "ack": acked})

    async def agent_heartbeat(request: web.Request, ms: MasterState) -> web.StreamResponse:
        body = await read_json(request)
        try:
            acked = ms.heartbeat(
                str(body["agent_id"]), [Task.from_json(t) for t in body.get("tasks", [])]
            )
        except Unknown:
            return error(404, "unknown agent: re-register")
        return json_response({"ack": acked})

    async def framework_register(request: web.Request, ms: MasterState) -> web.StreamResponse:
        body = await read_json(request)
        fid = ms.register_framework(
            body.get("framework_id") or None, body.get("framework_info", {})
        )
        return json_response({"framework_id": fid, "master_id": master.master_id})

    def framework_call(
        fn: Callable[[web.Request, MasterState, str], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request, MasterState], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request, ms: MasterState) -> web.StreamResponse:
            fid = request.match_info["fid"]
            try:
                ms.framework(fid)
                return await fn(request, ms, fid)
            except Unknown:
                return error(404, f"framework {fid} is not registered")

        return handler

    async def launch(request: web.Request, ms: MasterState, fid: str) -> web.StreamResponse:
        body = await read_json(request)
        placed, errors = ms.place(fid, list(body.get("tasks", [])))
        for task in placed:
            agent = ms.agents[task.agent_id]
            master.spawn(master.call_agent(agent.url + "/sim/v1/launch", task.to_json()))
        return json_response({"launched": [t.to_json() for t in placed], "errors": errors})

    async def kill(request: web.Request, ms: MasterState, fid: str) -> web.StreamResponse:
        body = await read_json(request)
        task = ms.tasks.get((fid, str(body["task_id"])))
        if task is None:
            return error(404, f"unknown task {body['task_id']}")
        agent = ms.agents.get(task.agent_id)
        if agent is not None:
            payload = {"framework_id": fid, "task_id": task.task_id}
            master.spawn(master.call_agent(agent.url + "/sim/v1/kill", payload))
        return json_response({})

    async def fw_tasks(request: web.Request, ms: MasterState, fid: str) -> web.StreamResponse:
        live, done = ms.framework_tasks(fid)
        agents = {a.agent_id: a.hostname for a in ms.agents.values()}
        return json_response(
            {
                "tasks": [t.to_json() for t in live],
                "completed_tasks": [t.to_json() for t in done],
                "inverse_offers": ms.inverse_offers(fid),
                "agents": agents,
                "recovering_agents": sorted(ms.recovered_agents),
            }
        )

    async def inverse(request: web.Request, ms: MasterState, fid: str) -> web.StreamResponse:
        body = await read_json(request)
        ms.respond_inverse_offer(fid, str(body["agent_id"]), str(body.get("status", "ACCEPT")))
        return json_response({})

    async def log_op(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        if not isinstance(body, dict):
            return error(400, "expected a JSON object")
        try:
            answer = master.log.handle(request.match_info["op"], body)
        except (KeyError, TypeError, ValueError) as exc:
            return error(400, f"bad log request: {exc}")
        if answer is None:
            return error(503, f"replica is {master.log.replica.status}: request ignored")
        return json_response(answer)

    async def log_audit(request: web.Request) -> web.StreamResponse:
        return json_response(master.log.view(leading=master.state is not None))

    async def leader_info(request: web.Request) -> web.StreamResponse:
        return json_response(
            {
                "leader": master.leader,
                "self": master.info,
                "elected": master.state is not None,
                "redirect": masterinfo.advertised(master.leader) if master.leader else None,
            }
        )

    app = web.Application()
    add: list[tuple[str, str, Handler]] = []
    for prefix in ("/master", ""):
        add += [
            ("GET", f"{prefix}/state", leading(state, readonly=True)),
            ("GET", f"{prefix}/state-summary", leading(summary, readonly=True)),
            ("GET", f"{prefix}/slaves", leading(slaves, readonly=True)),
            ("GET", f"{prefix}/frameworks", leading(frameworks, readonly=True)),
            ("GET", f"{prefix}/tasks", leading(tasks, readonly=True)),
            ("GET", f"{prefix}/redirect", redirect),
            ("GET", f"{prefix}/health", health),
            ("GET", f"{prefix}/maintenance/schedule", leading(get_schedule, readonly=True)),
            ("POST", f"{prefix}/maintenance/schedule", leading(post_schedule)),
            ("GET", f"{prefix}/maintenance/status", leading(maintenance_status, readonly=True)),
            ("POST", f"{prefix}/machine/down", leading(machine_down)),
            ("POST", f"{prefix}/machine/up", leading(machine_up)),
        ]
    add += [
        ("GET", "/metrics/snapshot", metrics),
        (
            "POST",
            "/sim/v1/agents/register",
            authenticated("agent", master.config.authenticate_agents, leading(agent_register)),
        ),
        ("POST", "/sim/v1/agents/heartbeat", leading(agent_heartbeat)),
        (
            "POST",
            "/sim/v1/frameworks/register",
            authenticated(
                "framework", master.config.authenticate_frameworks, leading(framework_register)
            ),
        ),
        ("POST", "/sim/v1/frameworks/{fid}/launch", leading(framework_call(launch))),
        ("POST", "/sim/v1/frameworks/{fid}/kill", leading(framework_call(kill))),
        ("GET", "/sim/v1/frameworks/{fid}/tasks", leading(framework_call(fw_tasks))),
        ("POST", "/sim/v1/frameworks/{fid}/inverse_offers", leading(framework_call(inverse))),
        ("POST", "/sim/v1/log/{op:recover|promise|write|state}", log_op),
        ("GET", "/sim/v1/log", log_audit),
        ("GET", "/sim/v1/leader", leader_info),
    ]
    for method, path, handler in add:
        app.router.add_route(method, path, handler)
    return app
