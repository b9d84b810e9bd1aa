"""``python -m bench.fuzz`` (``scripts/fuzz``): send N generated requests to a real server and
fail on any 5xx, any reply that is not the envelope, and any reply slower than 2 s.

By default it starts ``goalline serve`` on a fresh SQLite store (``--database`` for a
PostgreSQL schema instead) holding the demo data and the databases, pixels and tokens of the
seed examples, so valid mutations get as far as storage. ``--url`` targets a running server
instead (127.0.0.1 only). The requests are bench/mutate.py's cases: JSON and XML mutations of
the seed examples and of one body per API method, with odd headers, paths and HTTP methods; a
run is reproducible from its ``--seed``, and ``--case I`` makes one case again. Requests go
out with httpx2 over at most ``--concurrency`` connections; the few whose header bytes httpx2
refuses to send (control bytes, bad framing) go over a raw socket.

A reply passes when it is the envelope (a JSON object with an integer ``error`` and a string
``error_text``, or the same as Altcraft XML), its HTTP status mirrors the code (405 carries
error 400), it is not a 5xx, and it came within ``--slow`` seconds. Failing requests are saved
byte for byte (``NNNNNN-kind.request``: replay with ``scripts/fuzz --replay FILE`` or ``nc``)
with their replies, and the server's log beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml.ElementTree import fromstring

from bench import mutate
from bench.server import BenchStore, Server, free_port, make_workdir, remove_workdir
from bench.system import BenchError, say
from goalline.errors import ERROR_CODES, SUCCESS_TEXT
from goalline.progress import count_bar

DEFAULT_N = 2000
SLOW_SECONDS = 2.0
TIMEOUT_SECONDS = 10.0
RESULTS = Path(__file__).resolve().parent / "results"
#: At most this many failing requests are saved per kind (all are counted).
SAVE_PER_KIND = 50
KINDS = ("5xx", "not-envelope", "status-mismatch", "slow", "no-reply")


@dataclass
class Outcome:
    index: int
    label: str
    status: int | None
    seconds: float
    kind: str | None = None  # None: the reply passed
    problem: str = ""
    ops: list[str] = field(default_factory=list)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class NotEnvelope(Exception):
    pass


# -- checking a reply -----------------------------------------------------------------------------


def envelope_of(media: str, body: bytes) -> tuple[int, str]:
    """(error, error_text) of a reply, or NotEnvelope saying why it is not one."""
    if media == "application/json":
        try:
            reply = json.loads(body)
        except ValueError as exc:
            raise NotEnvelope(f"JSON reply does not parse ({exc})") from None
        if not isinstance(reply, dict):
            raise NotEnvelope("JSON reply is not an object")
        code, text = reply.get("error"), reply.get("error_text")
        if type(code) is not int or not isinstance(text, str):
            raise NotEnvelope("JSON reply lacks an integer error and a string error_text")
        return code, text
    if media == "application/xml":
        try:
            root = fromstring(body)
        except (ParseError, ValueError) as exc:
            raise NotEnvelope(f"XML reply does not parse ({exc})") from None
        error, error_text = root.find("error"), root.find("error_text")
        if root.tag != "xml" or error is None or error_text is None:
            raise NotEnvelope("XML reply is not <xml> with <error> and <error_text>")
        try:
            return int(error.text or ""), error_text.text or ""
        except ValueError:
            raise NotEnvelope(f"XML <error> is not an integer: {error.text!r}") from None
    raise NotEnvelope(f"content type {media!r} is neither JSON nor XML")


def judge(case: mutate.Case, reply: Reply, seconds: float, slow: float) -> tuple[str, str] | None:
    """(kind, problem) of a failing reply, or None."""
    snippet = reply.body[:160].decode("utf-8", "replace")
    if reply.status >= 500:
        return "5xx", f"HTTP {reply.status}: {snippet}"
    media = reply.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        code, text = envelope_of(media, reply.body)
    except NotEnvelope as exc:
        return "not-envelope", f"HTTP {reply.status}: {exc}: {snippet}"
    if code not in ERROR_CODES or not text or (code == 0 and text != SUCCESS_TEXT):
        return "not-envelope", f"HTTP {reply.status}: error {code} with error_text {text!r}"
    expected = 200 if code == 0 else code
    if reply.status != expected and not (reply.status == 405 and code == 400):
        return "status-mismatch", f"HTTP {reply.status} for error {code}: {snippet}"
    if seconds > slow:
        return "slow", f"{seconds:.2f} s (limit {slow:g} s)"
    return None


# -- sending --------------------------------------------------------------------------------------


async def send_raw(host: str, port: int, data: bytes, timeout: float) -> Reply:
    """One request over its own connection (``Connection: close``), read to the end.

    A server may answer and close before it has read the whole request (a refused header,
    a body too large): what it sent is read even when sending the rest failed, and interim
    ``100 Continue`` replies are skipped."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    raw = b""
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(writer.drain(), timeout)
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), timeout):
                raw += chunk
        except ConnectionError:
            if not raw:
                raise
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    while raw.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in raw:
        raw = raw.partition(b"\r\n\r\n")[2]  # 100 Continue
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"no HTTP reply (got {raw[:60]!r})")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    length = headers.get("content-length", "")
    if length.isdigit():
        body = body[: int(length)]
    return Reply(int(parts[1]), headers, body)


class Sender:
    """httpx2 over a bounded pool of keep-alive connections; a raw socket where httpx2 will not
    send the request (header bytes HTTP forbids, framing of our own)."""

    def __init__(self, url: str, concurrency: int, timeout: float) -> None:
        import httpx2

        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.timeout = timeout
        self.httpx = httpx2
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx2.AsyncClient(limits=limits, timeout=timeout)
        for name in ("accept", "accept-encoding", "user-agent", "connection"):
            self.client.headers.pop(name, None)

    async def send(self, case: mutate.Case) -> Reply:
        if not case.raw:
            try:
                response = await self.client.request(
                    case.method, self.url + case.path, content=case.body, headers=case.headers
                )
            except self.httpx.TimeoutException:
                raise
            except (self.httpx.TransportError, self.httpx.InvalidURL, ValueError, TypeError):
                # httpx2 refused to send it, or a kept-alive connection was gone: say it
                # ourselves, on a fresh connection
                pass
            else:
                return Reply(
                    response.status_code,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.content,
                )
        return await send_raw(self.host, self.port, case.request_bytes(self.netloc), self.timeout)

    async def close(self) -> None:
        await self.client.aclose()


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Tally:
    seed: int
    requested: int
    url: str
    concurrency: int
    out: Path
    by_status: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_op: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Outcome]] = field(default_factory=dict)
    times: list[tuple[float, int, str, int | None]] = field(default_factory=list)
    saved: int = 0
    completed: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def failures(self) -> int:
        return sum(self.by_kind.values())

    def add(self, outcome: Outcome, case: mutate.Case, reply: Reply | None, host: str) -> None:
        self.completed += 1
        self.by_status["no reply" if outcome.status is None else str(outcome.status)] += 1
        self.times.append((outcome.seconds, outcome.index, outcome.label, outcome.status))
        if outcome.kind is None:
            return
        self.by_kind[outcome.kind] += 1
        for op in sorted(set(outcome.ops or ["unmutated"])):
            self.by_op[op] += 1
        kept = self.examples.setdefault(outcome.kind, [])
        if len(kept) < SAVE_PER_KIND:
            kept.append(outcome)
            self.save(outcome, case, reply, host)

    def save(self, outcome: Outcome, case: mutate.Case, reply: Reply | None, host: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        stem = self.out / f"{outcome.index:06d}-{outcome.kind}"
        stem.with_suffix(".request").write_bytes(case.request_bytes(host))
        if reply is not None:
            head = f"HTTP {reply.status}\n" + "".join(
                f"{k}: {v}\n" for k, v in reply.headers.items()
            )
            stem.with_suffix(".reply").write_bytes(head.encode() + b"\n" + reply.body)
        self.saved += 1

    def slowest(self, count: int = 10) -> list[tuple[float, int, str, int | None]]:
        return sorted(self.times, reverse=True)[:count]

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.failures == 0 and not self.stopped_early,
            "seed": self.seed,
            "requested": self.requested,
            "completed": self.completed,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.completed / self.seconds, 1) if self.seconds else 0,
            "url": self.url,
            "concurrency": self.concurrency,
            "by_status": dict(sorted(self.by_status.items())),
            "failures": {
                "total": self.failures,
                "by_kind": dict(self.by_kind.most_common()),
                "by_mutation": dict(self.by_op.most_common()),
                "saved": self.saved,
                "saved_to": str(self.out) if self.saved else None,
                "examples": {
                    kind: [asdict(o) for o in outcomes[:5]]
                    for kind, outcomes in self.examples.items()
                },
            },
            "slowest": [
                {"seconds": round(s, 3), "case": i, "label": label, "status": status}
                for s, i, label, status in self.slowest()
            ],
        }


async def fuzz(
    url: str,
    *,
    seed: int,
    count: int,
    concurrency: int,
    slow: float,
    max_seconds: float,
    out: Path,
    progress: bool,
    only: int | None = None,
) -> Tally:
    seeds = mutate.load_seeds()
    tally = Tally(seed, count if only is None else 1, url, concurrency, out)
    sender = Sender(url, concurrency, TIMEOUT_SECONDS)
    indices = iter([only]) if only is not None else iter(range(count))
    started = time.perf_counter()
    deadline = started + max_seconds
    done = 0

    async def worker() -> None:
        for index in indices:
            if time.perf_counter() > deadline:
                tally.stopped_early = True
                return
            case = mutate.case(seed, index, seeds)
            t0 = time.perf_counter()
            reply: Reply | None = None
            try:
                reply = await sender.send(case)
            except Exception as exc:
                seconds = time.perf_counter() - t0
                outcome = Outcome(index, case.label, None, seconds, "no-reply", repr(exc), case.ops)
            else:
                seconds = time.perf_counter() - t0
                verdict = judge(case, reply, seconds, slow)
                kind, problem = verdict if verdict else (None, "")
                outcome = Outcome(index, case.label, reply.status, seconds, kind, problem, case.ops)
            tally.add(outcome, case, reply, sender.netloc)
            if only is not None:
                _show_case(case, reply, outcome)
            nonlocal done
            done += 1
            update(done, failures=tally.failures)

    try:
        with count_bar(tally.requested, "fuzzing", enabled=progress, failures=True) as update:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await sender.close()
    tally.seconds = time.perf_counter() - started
    return tally


def _show_case(case: mutate.Case, reply: Reply | None, outcome: Outcome) -> None:
    say(f"case {case.index}: {case.label}")
    say(case.request_bytes("127.0.0.1")[:2000].decode("utf-8", "replace"))
    if reply is not None:
        say(f"--> HTTP {reply.status} {reply.headers.get('content-type', '')}")
        say(reply.body[:2000].decode("utf-8", "replace"))
    say(f"verdict: {outcome.kind or 'ok'} {outcome.problem}")


def report(tally: Tally) -> str:
    lines = [
        f"goalline fuzz: {tally.completed:,} of {tally.requested:,} requests (seed {tally.seed}) "
        f"to {tally.url} in {tally.seconds:.1f} s "
        f"({tally.completed / max(tally.seconds, 1e-9):,.0f}/s, {tally.concurrency} connections)",
        "",
        "replies by HTTP status:",
    ]
    lines += [f"  {status:>8}  {n:>7,}" for status, n in sorted(tally.by_status.items())]
    lines.append("")
    if tally.failures:
        lines.append(f"FAILED: {tally.failures:,} failing replies")
        for kind, n in tally.by_kind.most_common():
            first = tally.examples[kind][0]
            lines.append(f"  {kind:<16} {n:>7,}   e.g. case {first.index} ({first.label})")
            lines.append(f"  {'':<16} {'':>7}   {first.problem[:110]}")
        lines.append("failing replies by mutation (a case may have several):")
        lines += [f"  {op:<28} {n:>7,}" for op, n in tally.by_op.most_common(15)]
        lines.append(
            f"{tally.saved} failing requests saved in {tally.out}/ with their replies "
            "(resend one: scripts/fuzz --replay FILE --url URL; or scripts/fuzz --seed "
            f"{tally.seed} --case N)"
        )
    else:
        lines.append("no 5xx, every reply an envelope with a mirrored status, none slow")
    if tally.stopped_early:
        lines.append(f"STOPPED EARLY: the time limit passed after {tally.completed:,} requests")
    lines.append("")
    lines.append("slowest replies:")
    lines += [
        f"  {s:7.3f} s  case {i:<6} HTTP {status}  {label[:80]}"
        for s, i, label, status in tally.slowest()
    ]
    lines += ["", f"fuzz: {tally.completed - tally.failures} passed, {tally.failures} failed"]
    return "\n".join(lines)


# -- the server under test ------------------------------------------------------------------------


def prepare(store: BenchStore) -> None:
    """The demo data, plus what the seed examples name: databases 1 and 24, pixels 1 and 7,
    the examples' tokens."""
    import datetime as dt

    from goalline import demo
    from goalline.model import iso_utc
    from goalline.pipeline import admin
    from goalline.storage.ports import UnitOfWork
    from goalline.storage.store import open_store

    now = iso_utc(dt.datetime.now(dt.UTC))

    def examples(uow: UnitOfWork) -> None:
        admin.create_database(uow, name="Shop 24", db_id=24, now=now)
        admin.create_pixel(uow, name="Site 7", db_id=24, pixel_id=7, now=now)
        for i, token in enumerate(mutate.EXAMPLE_TOKENS):
            admin.create_token(uow, name=f"example-{i}", value=token, now=now)

    opened = open_store(store.url)
    try:
        opened.migrate()
        demo.seed(opened)
        opened.call(examples)
    finally:
        opened.close()


def replay(url: str, files: list[str]) -> int:
    parts = urlsplit(url)

    async def one(path: str) -> None:
        data = Path(path).read_bytes()
        reply = await send_raw(parts.hostname or "127.0.0.1", parts.port or 80, data, 30)
        say(f"{path}: HTTP {reply.status} {reply.headers.get('content-type', '')}")
        say(reply.body[:4000].decode("utf-8", "replace"))

    for path in files:
        asyncio.run(one(path))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/fuzz",
        description="Send generated JSON and XML mutations of the seed examples to a real "
        "Goalline server; fail on any 5xx, non-envelope reply or reply slower than --slow.",
    )
    p.add_argument("-n", "--requests", type=int, default=DEFAULT_N, help="how many (%(default)s)")
    p.add_argument("--seed", type=int, default=1, help="run seed; same seed, same requests")
    p.add_argument("--case", type=int, help="send only case N of --seed and show it in full")
    p.add_argument("--url", help="a running server (127.0.0.1 only); default: start one")
    p.add_argument(
        "--database", help="start the server on a fresh schema of this PostgreSQL URL instead"
    )
    p.add_argument("-c", "--concurrency", type=int, default=8, help="connections (%(default)s)")
    p.add_argument("--slow", type=float, default=SLOW_SECONDS, help="seconds (%(default)s)")
    p.add_argument(
        "--max-seconds", type=float, default=900, help="stop sending after (%(default)s)"
    )
    p.add_argument("--out", type=Path, help="folder for failing requests (bench/results/...)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="resend saved .request files")
    args = p.parse_args(argv)
    if args.url and urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("--url: only a server on this machine (127.0.0.1) is fuzzed")
    if args.replay and not args.url:
        p.error("--replay needs --url")
    if args.requests < 1 or args.concurrency < 1:
        p.error("-n and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replay:
        return replay(args.url, args.replay)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS / f"fuzz-{stamp}-seed{args.seed}"
    progress = sys.stderr.isatty() and args.case is None
    run = dict(
        seed=args.seed,
        count=args.requests,
        concurrency=args.concurrency,
        slow=args.slow,
        max_seconds=args.max_seconds,
        out=out,
        progress=progress,
        only=args.case,
    )
    try:
        if args.url:
            tally = asyncio.run(fuzz(args.url, **run))
        else:
            workdir = make_workdir()
            try:
                with BenchStore(args.database or "", workdir) as store:
                    say(f"starting goalline serve on {store.label} ...")
                    prepare(store)
                    with Server(store, port=free_port(), workers=1, workdir=workdir) as server:
                        url = f"http://127.0.0.1:{server.port}"
                        tally = asyncio.run(fuzz(url, **run))
                    if tally.failures:
                        out.mkdir(parents=True, exist_ok=True)
                        (out / "server.log").write_bytes(server.log_path.read_bytes())
            finally:
                remove_workdir(workdir)
    except BenchError as exc:
        say(f"fuzz: {exc}")
        return 2
    summary = tally.summary()
    if tally.failures or tally.stopped_early:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(report(tally))
    if tally.failures:
        return 1
    return 2 if tally.stopped_early else 0


if __name__ == "__main__":
    sys.exit(main())
