"""The scenarios: request bodies built from the seed page's examples, and the wrk Lua scripts.

Every request a script sends is distinct (the server stores a repeated request once and replays
its reply: SPEC §2), so bodies are templates with per-request variables that the Lua
``request()`` function fills in:

``n``      a number unique to the request in the whole benchmark run (goal ``value``s carry it);
``pid``    a seeded profile's id, rotating over the first ``HOT_PROFILES`` profiles;
``email``  a seeded profile's email, rotating over every seeded profile;
``ua``     a User-Agent unique to the request (four browser families, version carries ``n``);
``ip``     a public-looking IPv4 address unique to the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "contract" / "examples"
REGISTER_PATH = "/api/v1.1/goals/register"
NOOP_PATH = "/bench/noop"
#: Profiles the profile_id-matched scenarios rotate over (the steady, cache-friendly case).
HOT_PROFILES = 100
JSON_TYPE = "application/json"
XML_TYPE = "application/xml"

_VAR = re.compile(r'"@@NUM:(\w+)@@"|@@STR:(\w+)@@')


@dataclass(frozen=True)
class Var:
    name: str


Chunk = str | Var


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    path: str
    content_type: str
    body: tuple[Chunk, ...]
    #: Goal events stored per acknowledged request (0: nothing is stored, e.g. the no-op).
    goals: int
    #: Paced at half the json-1goal peak rate instead of driven as fast as possible.
    paced: bool = False

    def example(self, values: dict[str, str]) -> str:
        """The body with ``values`` filled in (for docs and the self-check)."""
        return "".join(c if isinstance(c, str) else values[c.name] for c in self.body)


def _template(text: str) -> tuple[Chunk, ...]:
    chunks: list[Chunk] = []
    pos = 0
    for m in _VAR.finditer(text):
        if m.start() > pos:
            chunks.append(text[pos : m.start()])
        chunks.append(Var(m.group(1) or m.group(2)))
        pos = m.end()
    if pos < len(text):
        chunks.append(text[pos:])
    return tuple(chunks)


def _json(obj: dict[str, Any]) -> tuple[Chunk, ...]:
    return _template(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def _own(body: dict[str, Any], token: str, db_id: int, pixel_id: int) -> dict[str, Any]:
    """The example with the seeded token, database and pixel, matched to a seeded profile."""
    return {
        **body,
        "token": token,
        "db_id": db_id,
        "pixel_id": pixel_id,
        **({"profile_id": "@@STR:pid@@"} if body.get("matching") == "profile_id" else {}),
    }


def _xml(token: str, db_id: int, pixel_id: int) -> tuple[Chunk, ...]:
    text = (EXAMPLES / "1-goal.xml").read_text()
    for tag, value in (
        ("token", token),
        ("db_id", str(db_id)),
        ("pixel_id", str(pixel_id)),
        ("profile_id", "@@STR:pid@@"),
        ("value", "@@STR:n@@"),
    ):
        text, count = re.subn(f"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", text)
        assert count == 1, f"1-goal.xml has no single <{tag}>"
    return _template(text)


def build(token: str, db_id: int = 1, pixel_id: int = 1) -> list[Scenario]:
    """Every scenario, in the order they run (noop first: the others are compared to it)."""
    one = _own(_example("1-goal.json"), token, db_id, pixel_id)
    one["value"] = "@@NUM:n@@"
    full = _own(_example("full.json"), token, db_id, pixel_id)
    full["goals"] = [dict(g) for g in full["goals"]]
    full["goals"][0]["value"] = "@@NUM:n@@"
    full["external_event_id"] = "bench-@@STR:n@@"
    hundred = {k: v for k, v in one.items() if k not in ("goal", "value")}
    hundred["goals"] = [{"goal": f"item-{k:03d}", "value": k + 0.5} for k in range(100)]
    hundred["goals"][0]["value"] = "@@NUM:n@@"
    distinct = {k: v for k, v in one.items() if k != "profile_id"}
    distinct.update(
        matching="email", email="@@STR:email@@", user_agent="@@STR:ua@@", client_ip="@@STR:ip@@"
    )
    one_body = _json(one)
    return [
        Scenario(
            "noop",
            "POST /bench/noop with the 1-goal body: reads the body, answers the success "
            "envelope. The same server stack doing nothing: the baseline.",
            NOOP_PATH,
            JSON_TYPE,
            one_body,
            goals=0,
        ),
        Scenario(
            "json-1goal",
            "The seed's first example (1-goal.json): one goal matched by profile_id, "
            f"rotating over {HOT_PROFILES} seeded profiles.",
            REGISTER_PATH,
            JSON_TYPE,
            one_body,
            goals=1,
        ),
        Scenario(
            "json-full",
            "The seed's big example (full.json): two goals, every optional field, "
            "pixel_data, enrich_profile, a unique external_event_id per request.",
            REGISTER_PATH,
            JSON_TYPE,
            _json(full),
            goals=2,
        ),
        Scenario(
            "xml-1goal",
            "The seed's 1-goal XML example (1-goal.xml), matched by profile_id.",
            REGISTER_PATH,
            XML_TYPE,
            _xml(token, db_id, pixel_id),
            goals=1,
        ),
        Scenario(
            "goals-100",
            "One request with goals[] of 100 items (the 1-goal body otherwise); goal events/s "
            "is requests/s x 100.",
            REGISTER_PATH,
            JSON_TYPE,
            _json(hundred),
            goals=100,
        ),
        Scenario(
            "distinct-profiles",
            "1 goal matched by email, rotating over every seeded profile, with a User-Agent "
            "and client_ip unique to each request: profile, UA and GeoIP cache misses.",
            REGISTER_PATH,
            JSON_TYPE,
            _json(distinct),
            goals=1,
        ),
        Scenario(
            "half-peak-latency",
            "json-1goal paced at 50% of its measured peak requests/s: the p99 a server "
            "sees when it is not saturated.",
            REGISTER_PATH,
            JSON_TYPE,
            one_body,
            goals=1,
            paced=True,
        ),
    ]


NAMES = (
    "noop",
    "json-1goal",
    "json-full",
    "xml-1goal",
    "goals-100",
    "distinct-profiles",
    "half-peak-latency",
)


# -- Lua ----------------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    """A double-quoted Lua string literal for ``text`` (UTF-8 bytes, escaped)."""
    out = ['"']
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


_UA_FAMILIES = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.",
        ".0 Safari/537.36",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.",
        " Safari/605.1.15",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.",
        ".0 Mobile Safari/537.36",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1.",
        " Mobile/15E148 Safari/604.1",
    ),
)

#: Lua statements computing each variable from ``i`` (the thread's request index, interleaved
#: over threads) and ``n`` (``i`` plus the run's base: unique in the whole benchmark run).
_VAR_LUA = {
    "n": 'local v_n = string.format("%d", n)',
    "pid": "local v_pid = PIDS[(i % #PIDS) + 1]",
    "email": 'local v_email = string.format("bench%d@example.com", i % NPROFILES)',
    "ua": "local f = (i % #UA_HEAD) + 1\n"
    '  local v_ua = UA_HEAD[f] .. string.format("%d", n) .. UA_TAIL[f]',
    "ip": 'local v_ip = string.format("%d.%d.%d.%d", 11 + n % 180, math.floor(n / 180) % 256, '
    "math.floor(n / 46080) % 256, 1 + math.floor(n / 11796480) % 254)",
}

_LUA = r"""-- {name}: generated by `python -m bench`; run as
--   wrk -t<threads> -c<conns> -d<seconds> -s <this file> <url> -- <base> <rate per thread> <dir>
-- Each thread stops sending {duration_ms} ms after it starts and then waits for its replies
-- ("the drain"), so that every request sent is answered before wrk stops: the stored-events
-- check needs it. A drained thread creates <dir>/drained-<thread>, and the benchmark then stops
-- wrk with SIGINT. done() prints one JSON line.
local ffi = require("ffi")
pcall(ffi.cdef, [[
typedef struct {{ long tv_sec; long tv_nsec; }} bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local PATH = {path}
local HEADERS = {{["Content-Type"] = {content_type}}}
local THREADS = {threads}
local DURATION_MS = {duration_ms}
local NPROFILES = {nprofiles}
local PIDS = {{{pids}}}
local UA_HEAD = {{{ua_head}}}
local UA_TAIL = {{{ua_tail}}}

local threads = {{}}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- Per-thread counters are globals so that done() can read them with thread:get().
sent, responses, ok, not_ok, non2xx, replayed, dup_events = 0, 0, 0, 0, 0, 0, 0
t_start, t_last, sample = 0, 0, ""
local counter, base, interval, next_slot, stop_at = 0, 0, 0, 0, 0
local started, inflight, scheduled, drained, marker = false, 0, 0, false, nil

function init(args)
  base = tonumber(args[1]) or 0
  local rate = tonumber(args[2]) or 0
  if rate > 0 then interval = 1000 / rate end
  if args[3] then marker = args[3] .. "/drained-" .. tid end
  t_start = now_ms()
  t_last = t_start
  stop_at = t_start + DURATION_MS
  next_slot = t_start
end

local function check_drained(now)
  if not drained and now >= stop_at and inflight == 0 and scheduled == 0 then
    drained = true
    if marker then
      local f = io.open(marker, "w")
      if f then f:close() end
    end
  end
end

-- wrk calls delay() before every request it sends (and request() once more, to check the
-- script, before the run starts: that call is not counted).
function delay()
  started = true
  local now = now_ms()
  if now >= stop_at then -- the drain: send nothing more
    check_drained(now)
    return 3600000
  end
  if interval == 0 then
    scheduled = scheduled + 1
    return 0
  end
  -- Pacing: every request takes the next free slot of the thread's schedule.
  local slot = next_slot
  if slot < now then slot = now end
  if slot >= stop_at then return 3600000 end
  next_slot = slot + interval
  scheduled = scheduled + 1
  return math.floor(slot - now)
end

function request()
  if started then
    sent = sent + 1
    inflight = inflight + 1
    if scheduled > 0 then scheduled = scheduled - 1 end
  end
  local i = counter * THREADS + tid
  counter = counter + 1
  local n = base + i
  {variables}
  return wrk.format("POST", PATH, HEADERS, {body})
end

function response(status, headers, body)
  responses = responses + 1
  inflight = inflight - 1
  t_last = now_ms()
  check_drained(t_last)
  if status >= 200 and status < 300 then
    if body:sub(1, 11) == '{{"error":0,' or body:find("<error>0</error>", 1, true) then
      ok = ok + 1
      if headers["duplicate-request"] or headers["Duplicate-Request"] then
        replayed = replayed + 1
      end
      if body:find("duplicate_event_ids", 1, true) then dup_events = dup_events + 1 end
      return
    end
    not_ok = not_ok + 1
  else
    non2xx = non2xx + 1
  end
  if sample == "" then sample = status .. " " .. body:sub(1, 300) end
end

local function esc(s)
  return (s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end))
end

function done(summary, latency, requests)
  local keys = {{"sent", "responses", "ok", "not_ok", "non2xx", "replayed", "dup_events"}}
  local total = {{}}
  for _, k in ipairs(keys) do total[k] = 0 end
  local first, last, samples = math.huge, 0, {{}}
  for _, t in ipairs(threads) do
    for _, k in ipairs(keys) do total[k] = total[k] + t:get(k) end
    first = math.min(first, t:get("t_start"))
    last = math.max(last, t:get("t_last"))
    local s = t:get("sample")
    if s ~= "" then table.insert(samples, '"' .. esc(s) .. '"') end
  end
  local parts = {{}}
  for _, k in ipairs(keys) do table.insert(parts, string.format('"%s":%d', k, total[k])) end
  local e = summary.errors
  io.write("BENCH-RESULT {{", table.concat(parts, ","),
    string.format(',"window_ms":%.3f,"wrk_requests":%d,"wrk_duration_us":%d', last - first,
      summary.requests, summary.duration),
    string.format(',"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d',
      e.connect, e.read, e.write, e.timeout),
    string.format(',"status_errors":%d', e.status),
    string.format(',"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f',
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean),
    ',"samples":[', table.concat(samples, ","), "]}}\n")
end
"""


def lua_script(
    scenario: Scenario,
    *,
    threads: int,
    duration_ms: int,
    profile_ids: Sequence[str],
    nprofiles: int,
) -> str:
    used = [c.name for c in scenario.body if isinstance(c, Var)]
    variables = "\n  ".join(_VAR_LUA[name] for name in dict.fromkeys(used))
    body = " .. ".join(
        lua_string(c) if isinstance(c, str) else f"v_{c.name}" for c in scenario.body
    )
    pids = profile_ids[:HOT_PROFILES] if "pid" in used else ()
    return _LUA.format(
        name=scenario.name,
        path=lua_string(scenario.path),
        content_type=lua_string(scenario.content_type),
        threads=threads,
        duration_ms=duration_ms,
        nprofiles=max(1, nprofiles),
        pids=", ".join(lua_string(p) for p in pids),
        ua_head=", ".join(lua_string(h) for h, _ in _UA_FAMILIES),
        ua_tail=", ".join(lua_string(t) for _, t in _UA_FAMILIES),
        variables=variables,
        body=body,
    )
