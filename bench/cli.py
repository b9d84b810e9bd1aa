"""``python -m bench``: options, the run loop over stores and scenarios, and the checks."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import profile, report
from bench.prefill import parse_count, prefill
from bench.scenarios import NAMES, Scenario, build, lua_script
from bench.server import (
    BenchStore,
    Server,
    free_port,
    make_workdir,
    remove_workdir,
    seed_profiles,
    set_up,
)
from bench.system import (
    BenchError,
    Sampler,
    cores,
    ensure_wrk,
    process_tree,
    rss_kib,
    say,
    wait_for_idle,
)
from bench.wrk import WrkResult, run_wrk

DEFAULT_PG_HINT = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Run:
    """One measured wrk run."""

    rps: float
    goal_eps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    peak_rss_mib: float
    start_rss_mib: float
    end_rss_mib: float
    #: Private memory (RssAnon + RssShmem): RSS without file pages mapped in (the GeoIP mmdb).
    peak_private_mib: float
    start_private_mib: float
    end_private_mib: float
    server_cores: float
    db_cores: float
    wrk_cores: float
    other_cores: float
    busy_before: float
    replies: int
    ok: int
    unanswered: int
    socket_errors: int
    read_errors: int
    wrk_seconds: float


@dataclass
class ScenarioResult:
    name: str
    summary: str
    goals_per_request: int
    runs: list[Run] = field(default_factory=list)
    rps: float = 0.0
    goal_eps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    peak_rss_mib: float = 0.0
    peak_private_mib: float = 0.0
    server_cores: float = 0.0
    db_cores: float = 0.0
    wrk_cores: float = 0.0
    other_cores: float = 0.0
    ratio_to_noop: float | None = None
    target_rps: float | None = None
    acknowledged_goals: int = 0
    stored_events: int = 0
    events_match: bool = True
    replayed: int = 0
    duplicate_event_replies: int = 0
    error_samples: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None


@dataclass
class StoreResult:
    store: str
    kind: str
    url_shown: str
    seed_profiles: int
    seed_seconds: float
    server_command: str
    scenarios: list[ScenarioResult] = field(default_factory=list)
    #: --prefill: events stored when the second pass started (0: no prefill), how many of them
    #: the prefill added with SQL and how long that took, and the second pass's results.
    prefill_rows: int = 0
    prefill_added: int = 0
    prefill_seconds: float = 0.0
    prefilled_scenarios: list[ScenarioResult] = field(default_factory=list)
    #: Server memory after seeding, before the warm-up of every scenario (Bench.warm_all), and
    #: whether the warm-up's acknowledged goals were all stored.
    cold_rss_mib: float = 0.0
    cold_private_mib: float = 0.0
    warmup_events_match: bool = True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark goalline serve over HTTP with wrk: per scenario requests/s, goal "
        "events/s, p50/p99 latency, errors, server peak RSS, and the ratio to a no-op endpoint "
        "on the same server stack. See docs/performance.md.",
        epilog="Scenarios: " + ", ".join(NAMES) + ". Example: scripts/bench --quick; "
        f"scripts/bench --database sqlite --database {DEFAULT_PG_HINT}",
    )
    parser.add_argument(
        "--database",
        action="append",
        metavar="URL",
        help="Store to benchmark: 'sqlite' (a fresh file in a temporary folder; the default) or "
        "a postgresql:// URL (a fresh schema is created in it and dropped afterwards). Repeat "
        "to run several stores in one go; the report then compares them.",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(NAMES),
        help="Comma-separated scenarios to run (default: all). noop is always added (the "
        "baseline), and json-1goal when half-peak-latency needs its peak.",
    )
    parser.add_argument("--workers", type=int, default=1, help="goalline serve --workers (1)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario; median (3)")
    parser.add_argument(
        "--connections", type=int, default=64, help="wrk connections kept open (64)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument(
        "--profiles", type=int, default=10_000, help="profiles seeded with profiles/import (10000)"
    )
    parser.add_argument(
        "--prefill",
        type=_count,
        default=0,
        metavar="N",
        help="after the scenarios, fill goal_events up to N rows with SQL (not over HTTP; "
        "e.g. 10000000, 10M or 500k) and run --prefill-scenarios again on the same server, "
        "reported as a second table with each figure as a fraction of the first pass's (off)",
    )
    parser.add_argument(
        "--prefill-scenarios",
        default="json-1goal,goals-100",
        metavar="a,b",
        help="scenarios of the second pass after --prefill (json-1goal,goals-100); they are "
        "added to the first pass too, for the comparison",
    )
    parser.add_argument("--quick", action="store_true", help="a fast check: --duration 3 --runs 1")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="print the tables of a saved --json result and exit (runs nothing)",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--idle-threshold",
        type=float,
        default=0.3,
        help="before each run, wait until other processes use fewer cores than this (0.3)",
    )
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=20.0,
        help="longest wait for an idle box before a run, seconds; then it runs anyway and "
        "the report shows the load (20; 0 turns the wait off)",
    )
    parser.add_argument(
        "--py-spy",
        default="",
        metavar="SCENARIOS",
        help="after the measured runs of these scenarios (comma-separated), run once more "
        "with py-spy record on the server and print its top frames (needs py-spy in the venv)",
    )
    parser.add_argument(
        "--py-spy-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "goalline-bench-profiles",
        help="where --py-spy writes its collapsed stacks (<temp dir>/goalline-bench-profiles)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs = 3.0, 1
    args.database = args.database or ["sqlite"]
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in NAMES]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    wanted = set(chosen) | {"noop"}
    args.prefill_names = []
    if args.prefill:
        again = {s.strip() for s in args.prefill_scenarios.split(",") if s.strip()}
        bad = sorted(again - set(NAMES) | again & {"noop"})
        if bad or not again:
            parser.error(
                f"--prefill-scenarios: {', '.join(bad) or 'none given'}; choose from "
                + ", ".join(n for n in NAMES if n != "noop")
            )
        if "half-peak-latency" in again:
            again.add("json-1goal")
        args.prefill_names = [n for n in NAMES if n in again]
        wanted |= again
    if "half-peak-latency" in wanted:
        wanted.add("json-1goal")
    added = sorted(wanted - set(chosen), key=NAMES.index)
    if added:
        say(
            f"also running {', '.join(added)} (needed for the ratios / the half-peak rate / "
            "the --prefill comparison)"
        )
    args.scenario_names = [n for n in NAMES if n in wanted]
    args.profiled = {s.strip() for s in args.py_spy.split(",") if s.strip()}
    if args.prefill < 0:
        parser.error("--prefill must not be negative")
    if args.duration <= 0 or args.runs < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --runs, --connections and --threads must be positive")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    for spec in args.database:
        if spec != "sqlite" and not spec.startswith(("postgresql://", "postgres://")):
            parser.error(f"--database {spec!r}: use 'sqlite' or a postgresql:// URL")
    return args


def _count(text: str) -> int:
    """``--prefill``'s argument: an event count, with an optional k / M suffix."""
    try:
        return parse_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count (examples: 10000000, 10_000_000, 10M, 500k)"
        ) from None


#: The warm-up of every scenario (Bench.warm_all) runs each one until it has stored this many
#: goal events (answered this many requests, for the no-op): more than the largest bounded cache
#: (8,192 User-Agents; the scenarios send a new User-Agent and IP address with every request),
#: so every cache is full before memory is first sampled. At most WARM_MAX_SECONDS a scenario.
WARM_ITEMS = 10_000
WARM_MAX_SECONDS = 60.0


class Bench:
    """Runs the scenarios against one server; keeps the per-run base numbers unique."""

    def __init__(self, args: argparse.Namespace, wrk: str) -> None:
        self.args = args
        self.wrk = wrk
        self._seq = itertools.count(1)
        self.py_spy = profile.find_py_spy() if args.profiled else ""

    def run_store(self, spec: str) -> StoreResult:
        args = self.args
        workdir = make_workdir()
        try:
            with BenchStore(spec, workdir) as store:
                say(f"\n== {store.label}")
                say("setting up with the CLI: db create --id 1, db field add, pixel create, token")
                token = set_up(store)
                server = Server(
                    store,
                    port=args.port or free_port(),
                    workers=args.workers,
                    workdir=workdir,
                )
                shown = " ".join(server.command()).replace(store.url, "<store>")
                say(f"starting: {shown}")
                with server:
                    say(f"seeding {args.profiles:,} profiles with profiles/import ...")
                    t0 = time.monotonic()
                    ids = seed_profiles(server.port, token, args.profiles)
                    seeded = time.monotonic() - t0
                    say(f"  seeded in {seeded:.1f} s ({args.profiles / seeded:,.0f} profiles/s)")
                    result = StoreResult(
                        store=store.label,
                        kind=store.kind,
                        url_shown=spec if store.kind == "sqlite" else store.label,
                        seed_profiles=args.profiles,
                        seed_seconds=round(seeded, 2),
                        server_command=shown,
                    )
                    scenarios = {s.name: s for s in build(token)}
                    if args.warmup > 0:
                        self.warm_all(scenarios, store, server, ids, workdir, result)
                    for name in args.scenario_names:
                        sc = scenarios[name]
                        res = self.run_scenario(sc, store, server, ids, workdir, result.scenarios)
                        result.scenarios.append(res)
                        _check_alive(server, name)
                    if args.prefill:
                        self.second_pass(store, server, ids, workdir, scenarios, result)
                return result
        finally:
            remove_workdir(workdir)

    def warm_all(
        self,
        scenarios: dict[str, Scenario],
        store: BenchStore,
        server: Server,
        ids: list[str],
        workdir: Path,
        result: StoreResult,
    ) -> None:
        """Before the first measured run, warm up every scenario (WARM_ITEMS), so that what a
        server does once (import a parser, fill each bounded cache up to its size, grow the
        allocator's arenas to the working set) happens before memory is first sampled: the
        memory verdict is then on growth with stored events, not on the server's first minute.
        The cold figure is kept and reported beside it."""
        args = self.args
        result.cold_rss_mib, result.cold_private_mib = (
            round(kib / 1024, 1) for kib in rss_kib(process_tree(server.pid))
        )
        say(
            f"-- warming up every scenario (at least {args.warmup:g} s and {WARM_ITEMS:,} goal "
            f"events each); server memory before: "
            f"{result.cold_rss_mib:.0f} MiB RSS, {result.cold_private_mib:.0f} MiB private"
        )
        before = store.settled_count()
        acked = 0
        url = f"http://127.0.0.1:{server.port}"
        for name in args.scenario_names:
            sc = scenarios[name]
            if sc.paced:  # paced json-1goal: warmed by json-1goal itself
                continue
            path = self._script(sc, workdir, ids, args.warmup, "prewarm")
            started = time.monotonic()
            answered = errors = 0
            while True:
                r = self._wrk(path, url, args.warmup)
                acked += r.ok * sc.goals
                answered += r.ok
                errors += r.errors
                took = time.monotonic() - started
                if answered * max(1, sc.goals) >= WARM_ITEMS or took >= WARM_MAX_SECONDS:
                    break
            say(f"  {name}: {answered:,} requests in {took:.0f} s, {errors} errors")
            _check_alive(server, f"{name} (warm-up)")
        stored = store.settled_count() - before
        result.warmup_events_match = stored == acked
        say(
            f"  check: {acked:,} goals acknowledged = {stored:,} events stored"
            if stored == acked
            else f"\n!!!!! MISMATCH in the warm-up: {acked:,} goals acknowledged but "
            f"{stored:,} events stored !!!!!\n"
        )

    def _wrk(self, script: Path, url: str, seconds: float, rate: float = 0.0) -> WrkResult:
        """One wrk run of ``script`` with this benchmark's threads and connections, numbered
        apart from every other run (so every request of the whole benchmark is distinct)."""
        return run_wrk(
            self.wrk,
            script,
            url,
            threads=self.args.threads,
            connections=self.args.connections,
            seconds=seconds,
            base=next(self._seq) * 1_000_000_000,
            rate_per_thread=rate,
        )

    def _script(
        self, sc: Scenario, workdir: Path, ids: list[str], seconds: float, suffix: str = ""
    ) -> Path:
        """Write the wrk Lua script of ``sc`` for runs of ``seconds``."""
        path = workdir / f"{sc.name}{f'-{suffix}' if suffix else ''}.lua"
        path.write_text(
            lua_script(
                sc,
                threads=self.args.threads,
                duration_ms=round(seconds * 1000),
                profile_ids=ids,
                nprofiles=len(ids),
            )
        )
        return path

    def second_pass(
        self,
        store: BenchStore,
        server: Server,
        ids: list[str],
        workdir: Path,
        scenarios: dict[str, Scenario],
        result: StoreResult,
    ) -> None:
        """--prefill: fill the store up to N events with SQL while the server idles, then run
        the store-size scenarios again on the same server (same checks, same sampling). The
        no-op is not rerun: it does not touch the store, and the first pass's serves as the
        baseline of "x noop"."""
        args = self.args
        say(f"\n== {store.label}: prefilling goal_events to {args.prefill:,} events")
        result.prefill_added, took = prefill(store, args.prefill)
        result.prefill_seconds = round(took, 1)
        result.prefill_rows = store.settled_count()
        _check_alive(server, "the prefill")
        say(f"== second pass with {result.prefill_rows:,} events stored")
        for name in args.prefill_names:
            earlier = result.prefilled_scenarios + result.scenarios
            res = self.run_scenario(
                scenarios[name], store, server, ids, workdir, earlier, tag="prefilled"
            )
            result.prefilled_scenarios.append(res)
            _check_alive(server, f"{name} (prefilled)")

    def run_scenario(
        self,
        sc: Scenario,
        store: BenchStore,
        server: Server,
        ids: list[str],
        workdir: Path,
        earlier: list[ScenarioResult],
        tag: str = "",
    ) -> ScenarioResult:
        """One scenario: warm-up, measured runs, the stored == acknowledged check. ``earlier``
        are this store's results so far, most relevant first: the no-op for "x noop", and
        json-1goal's peak for half-peak-latency's pace."""
        args = self.args
        script = self._script(sc, workdir, ids, args.duration)
        warm = self._script(sc, workdir, ids, args.warmup, "warmup")
        res = ScenarioResult(sc.name, sc.summary, sc.goals)
        rate = 0.0
        if sc.paced:
            peak = next((s.rps for s in earlier if s.name == "json-1goal"), 0.0)
            if peak <= 0:
                raise BenchError("half-peak-latency needs the json-1goal peak rate")
            res.target_rps = round(peak / 2, 1)
            rate = res.target_rps / args.threads
        url = f"http://127.0.0.1:{server.port}"
        shown = f"{sc.name} ({tag})" if tag else sc.name
        say(f"-- {shown}" + (f" (paced at {res.target_rps:,.0f} req/s)" if res.target_rps else ""))
        before = store.settled_count()
        acked = 0
        results: list[WrkResult] = []

        def wrk_run(path: Path, seconds: float) -> WrkResult:
            r = self._wrk(path, url, seconds, rate)
            results.append(r)
            return r

        if args.warmup > 0:
            r = wrk_run(warm, args.warmup)
            acked += r.ok * sc.goals
            say(f"  warm-up: {r.rps:,.0f} req/s, {r.errors} errors")
        for k in range(args.runs):
            busy = wait_for_idle(args.idle_threshold, args.idle_wait) if args.idle_wait else 0.0
            db = "postgres" if store.kind == "postgresql" else ""
            with Sampler(server.pid, db_process=db) as sampler:
                r = wrk_run(script, args.duration)
            acked += r.ok * sc.goals
            run = _run(r, sampler, sc.goals, busy)
            res.runs.append(run)
            say(
                f"  run {k + 1}/{args.runs}: {run.rps:,.0f} req/s, p50 {run.p50_ms:.2f} ms, "
                f"p99 {run.p99_ms:.2f} ms, {run.errors} errors, RSS {run.peak_rss_mib:.0f} MiB "
                f"({run.peak_private_mib:.0f} private), "
                f"server {run.server_cores:.2f} cores, "
                + (f"PostgreSQL {run.db_cores:.2f}, " if db else "")
                + f"wrk {run.wrk_cores:.2f}, others {run.other_cores:.2f}"
            )
        if sc.name in args.profiled:
            acked += self._profile(sc, script, server, res, wrk_run, tag)
        after = store.settled_count()
        res.stored_events = after - before
        res.acknowledged_goals = acked
        res.events_match = res.stored_events == acked
        res.replayed = sum(r.replayed for r in results)
        res.duplicate_event_replies = sum(r.dup_events for r in results)
        res.error_samples = list(dict.fromkeys(s for r in results for s in r.samples))[:3]
        _summarise(res)
        noop = next((s for s in earlier if s.name == "noop"), None)
        if sc.name == "noop":
            res.ratio_to_noop = 1.0
        elif noop is not None and noop.rps > 0:
            res.ratio_to_noop = res.rps / noop.rps
        if not res.events_match:
            say(
                f"\n!!!!! MISMATCH in {shown}: {acked:,} goals acknowledged but "
                f"{res.stored_events:,} events stored !!!!!\n"
            )
        else:
            say(f"  check: {acked:,} goals acknowledged = {res.stored_events:,} events stored")
        for sample in res.error_samples:
            say(f"  error reply: {sample[:200]}")
        return res

    def _profile(
        self,
        sc: Scenario,
        script: Path,
        server: Server,
        res: ScenarioResult,
        wrk_run: Any,
        tag: str = "",
    ) -> int:
        out_dir: Path = self.args.py_spy_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        kind = "pg" if "PostgreSQL" in server.store.label else "sqlite"
        output = (out_dir / f"{kind}-{sc.name}{f'-{tag}' if tag else ''}.txt").resolve()
        say(f"  py-spy: one more run with py-spy record on the server -> {output}")
        spy = profile.start(self.py_spy, server.pid, self.args.duration, output)
        time.sleep(0.5)
        r: WrkResult = wrk_run(script, self.args.duration)
        _, err = spy.communicate(timeout=self.args.duration + 60)
        if spy.returncode != 0 or not output.exists():
            say(f"  py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
            return int(r.ok * sc.goals)
        top = profile.summarise(output)
        res.profile = {
            "file": str(output),
            "rps_while_profiled": round(r.rps, 1),
            "own": [[n, round(p, 1)] for n, p in top["own"]],
            "total": [[n, round(p, 1)] for n, p in top["total"]],
        }
        return int(r.ok * sc.goals)


def _check_alive(server: Server, during: str) -> None:
    if server.proc is not None and server.proc.poll() is not None:
        raise BenchError(f"goalline serve died during {during}:\n{server.tail()}")


def _run(r: WrkResult, sampler: Sampler, goals: int, busy: float) -> Run:
    u = sampler.usage
    window = max(r.window_ms / 1000, 1e-9)
    other = max(0.0, (u.box_cpu - u.server_cpu - u.db_cpu - r.wrk_cpu) / max(u.seconds, 1e-9))
    return Run(
        rps=round(r.rps, 1),
        goal_eps=round(r.rps * goals, 1),
        p50_ms=r.p50_us / 1000,
        p99_ms=r.p99_us / 1000,
        p999_ms=r.p999_us / 1000,
        errors=r.errors,
        peak_rss_mib=round(u.peak_rss_kib / 1024, 1),
        start_rss_mib=round(u.start_rss_kib / 1024, 1),
        end_rss_mib=round(u.end_rss_kib / 1024, 1),
        peak_private_mib=round(u.peak_private_kib / 1024, 1),
        start_private_mib=round(u.start_private_kib / 1024, 1),
        end_private_mib=round(u.end_private_kib / 1024, 1),
        server_cores=round(u.server_cpu / window, 2),
        db_cores=round(u.db_cpu / window, 2),
        wrk_cores=round(r.wrk_cpu / window, 2),
        other_cores=round(other, 2),
        busy_before=round(busy, 2),
        replies=r.responses,
        ok=r.ok,
        unanswered=r.unanswered,
        socket_errors=r.socket_errors,
        read_errors=r.read_errors,
        wrk_seconds=r.wrk_seconds,
    )


def _summarise(res: ScenarioResult) -> None:
    runs = res.runs

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    res.rps = round(med([r.rps for r in runs]), 1)
    res.goal_eps = round(res.rps * res.goals_per_request, 1)
    res.p50_ms = round(med([r.p50_ms for r in runs]), 2)
    res.p99_ms = round(med([r.p99_ms for r in runs]), 2)
    res.errors = sum(r.errors for r in runs)
    res.peak_rss_mib = max(r.peak_rss_mib for r in runs)
    res.peak_private_mib = max(r.peak_private_mib for r in runs)
    res.server_cores = round(med([r.server_cores for r in runs]), 2)
    res.db_cores = round(med([r.db_cores for r in runs]), 2)
    res.wrk_cores = round(med([r.wrk_cores for r in runs]), 2)
    res.other_cores = round(med([r.other_cores for r in runs]), 2)


def _wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    text = (out.stdout or out.stderr).splitlines()
    return text[0].split(" Copyright")[0].strip() if text else "wrk"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report.text(json.loads(args.report.read_text())))
        return 0
    try:
        wrk = ensure_wrk()
        bench = Bench(args, wrk)
        started = dt.datetime.now(dt.UTC)
        stores: list[StoreResult] = []
        failed: list[dict[str, str]] = []
        for spec in args.database:
            try:
                stores.append(bench.run_store(spec))
            except BenchError as exc:  # report the other stores' figures all the same
                shown = spec.split("@")[-1] if "://" in spec else spec
                say(f"bench: {shown}: {exc}")
                failed.append({"database": shown, "error": str(exc)})
    except BenchError as exc:
        say(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        say("bench: interrupted")
        return 130
    if not stores:
        return 2
    import goalline

    doc: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "minutes": round((dt.datetime.now(dt.UTC) - started).total_seconds() / 60, 1),
        "machine": {
            "cores": cores(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "goalline": goalline.__version__,
            "wrk": _wrk_version(wrk),
        },
        "config": {
            "workers": args.workers,
            "connections": args.connections,
            "threads": args.threads,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "runs": args.runs,
            "profiles": args.profiles,
            "prefill": args.prefill,
            "prefill_scenarios": args.prefill_names,
        },
        "stores": [asdict(s) for s in stores],
        "failed": failed,
    }
    doc["comparison"] = report.compare(doc["stores"])
    doc["targets"] = report.targets(doc["stores"], doc["comparison"])
    mismatches = [
        f"{s['kind']}/{sc['name']}{suffix}"
        for s in doc["stores"]
        for suffix, key in (("", "scenarios"), (" (prefilled)", "prefilled_scenarios"))
        for sc in s[key]
        if not sc["events_match"]
    ] + [f"{s['kind']}/warm-up" for s in doc["stores"] if not s.get("warmup_events_match", True)]
    doc["mismatches"] = mismatches
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.text(doc))
    return 1 if mismatches or failed else 0
