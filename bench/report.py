"""The report: a table per store, the store comparison and the issue's targets."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    ("scenario", 18, "<"),
    ("req/s", 9, ">"),
    ("goal ev/s", 10, ">"),
    ("p50 ms", 7, ">"),
    ("p99 ms", 7, ">"),
    ("errors", 6, ">"),
    ("RSS MiB", 7, ">"),
    ("srv cores", 9, ">"),
    ("db cores", 8, ">"),
    ("x noop", 6, ">"),
    ("events", 6, "<"),
)


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _row(cells: list[str]) -> str:
    return "  ".join(
        f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True)
    ).rstrip()


def table(store: dict[str, Any]) -> str:
    lines = [_row([name for name, _, _ in COLUMNS])]
    lines.append(_row(["-" * width for _, width, _ in COLUMNS]))
    for sc in store["scenarios"]:
        ratio = sc["ratio_to_noop"]
        lines.append(
            _row(
                [
                    sc["name"],
                    _num(sc["rps"]),
                    _num(sc["goal_eps"]) if sc["goals_per_request"] else "-",
                    _num(sc["p50_ms"], 2),
                    _num(sc["p99_ms"], 2),
                    str(sc["errors"]),
                    _num(sc["peak_rss_mib"]),
                    _num(sc["server_cores"], 2),
                    _num(sc["db_cores"], 2) if store["kind"] == "postgresql" else "-",
                    "-" if ratio is None else f"{ratio:.2f}",
                    ("ok" if sc["events_match"] else "MISMATCH") if sc["goals_per_request"] else "",
                ]
            )
        )
    return "\n".join(lines)


def compare(stores: list[dict[str, Any]]) -> dict[str, Any]:
    """PostgreSQL's figures as a fraction of SQLite's, when both ran."""
    sqlite = next((s for s in stores if s["kind"] == "sqlite"), None)
    pg = next((s for s in stores if s["kind"] == "postgresql"), None)
    if sqlite is None or pg is None:
        return {}
    base = {sc["name"]: sc for sc in sqlite["scenarios"]}
    out: dict[str, Any] = {}
    for sc in pg["scenarios"]:
        other = base.get(sc["name"])
        if other and other["rps"] > 0 and sc["name"] != "half-peak-latency":
            out[sc["name"]] = round(sc["rps"] / other["rps"], 3)
    return {"postgresql_over_sqlite_rps": out}


def _verdict(ok: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "not measured"}[ok]


def targets(stores: list[dict[str, Any]], comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and MET / MISSED."""
    out: list[dict[str, Any]] = []
    for store in stores:
        by = {sc["name"]: sc for sc in store["scenarios"]}
        kind = store["kind"]
        one = by.get("json-1goal")
        if one is not None and one["ratio_to_noop"] is not None:
            ratio = one["ratio_to_noop"]
            out.append(
                {
                    "store": kind,
                    "target": "1-goal JSON >= 50% of the no-op's requests/s",
                    "measured": f"{ratio:.0%} ({one['rps']:,.0f} vs {by['noop']['rps']:,.0f} "
                    "req/s)",
                    "verdict": _verdict(ratio >= 0.5),
                }
            )
        hundred = by.get("goals-100")
        if hundred is not None:
            out.append(
                {
                    "store": kind,
                    "target": "goals[] of 100 >= 100,000 goal events/s",
                    "measured": f"{hundred['goal_eps']:,.0f} events/s",
                    "verdict": _verdict(hundred["goal_eps"] >= 100_000),
                }
            )
        half = by.get("half-peak-latency")
        if half is not None:
            out.append(
                {
                    "store": kind,
                    "target": "p99 <= 25 ms at 50% of peak rate",
                    "measured": f"p99 {half['p99_ms']:.1f} ms at {half['rps']:,.0f} req/s "
                    f"(target rate {half['target_rps']:,.0f})",
                    "verdict": _verdict(half["p99_ms"] <= 25),
                }
            )
        out.append(_rss(store))
    ratios = comparison.get("postgresql_over_sqlite_rps", {})
    if "json-1goal" in ratios:
        worst = min(ratios.items(), key=lambda kv: kv[1])
        out.append(
            {
                "store": "postgresql/sqlite",
                "target": "PostgreSQL >= 70% of SQLite",
                "measured": f"json-1goal {ratios['json-1goal']:.0%}; lowest {worst[0]} "
                f"{worst[1]:.0%}",
                "verdict": _verdict(all(v >= 0.7 for k, v in ratios.items() if k != "noop")),
            }
        )
    return out


def _rss(store: dict[str, Any]) -> dict[str, Any]:
    """RSS from the first stored-events run to the end of the store's run."""
    runs = [(sc, run) for sc in store["scenarios"] if sc["goals_per_request"] for run in sc["runs"]]
    stored = sum(sc["stored_events"] for sc in store["scenarios"])
    if not runs:
        return {
            "store": store["kind"],
            "target": "server RSS flat (+-10%)",
            "measured": "",
            "verdict": _verdict(None),
        }
    start = runs[0][1]["start_rss_mib"]
    peak = max(run["peak_rss_mib"] for _, run in runs)
    end = runs[-1][1]["end_rss_mib"]
    growth = (peak - start) / start if start else 0.0
    return {
        "store": store["kind"],
        "target": "server RSS flat (+-10%) while 1,000,000 events are stored",
        "measured": f"{start:.0f} MiB at the first measured run, peak {peak:.0f}, end {end:.0f} "
        f"(+{growth:.0%}) over {stored:,} stored events",
        "verdict": ("MET" if growth <= 0.10 else "MISSED")
        + ("" if stored >= 1_000_000 else " (fewer than 1,000,000 events in this run)"),
    }


def text(doc: dict[str, Any]) -> str:
    cfg = doc["config"]
    machine = doc["machine"]
    out = [
        "",
        f"goalline {machine['goalline']} benchmark, {doc['started']}"
        + (f" ({doc['minutes']:g} min)" if "minutes" in doc else "")
        + f": {machine['cores']} cores, "
        f"Python {machine['python']}, {machine['wrk']}",
        f"workers {cfg['workers']}, wrk -t{cfg['threads']} -c{cfg['connections']}, "
        f"{cfg['warmup_s']:g} s warm-up, {cfg['runs']} x {cfg['duration_s']:g} s runs (median), "
        f"{cfg['profiles']:,} seeded profiles",
    ]
    for store in doc["stores"]:
        out += ["", f"{store['store']}  (seeding took {store['seed_seconds']:.1f} s)", ""]
        out.append(table(store))
        notes = []
        for sc in store["scenarios"]:
            if sc["target_rps"]:
                notes.append(
                    f"half-peak-latency: target {sc['target_rps']:,.0f} req/s, achieved "
                    f"{sc['rps']:,.0f} req/s"
                )
            if not sc["events_match"]:
                notes.append(
                    f"MISMATCH {sc['name']}: {sc['acknowledged_goals']:,} goals acknowledged, "
                    f"{sc['stored_events']:,} events stored"
                )
            if sc["replayed"] or sc["duplicate_event_replies"]:
                notes.append(
                    f"{sc['name']}: {sc['replayed']} replayed replies, "
                    f"{sc['duplicate_event_replies']} with duplicate_event_ids"
                )
            for sample in sc["error_samples"]:
                notes.append(f"{sc['name']} error reply: {sample[:160]}")
            if sc["profile"]:
                notes.append(
                    f"{sc['name']} py-spy ({sc['profile']['rps_while_profiled']:,.0f} req/s "
                    f"while profiled; {sc['profile']['file']}), top own time:"
                )
                notes += [f"    {pct:5.1f}%  {name}" for name, pct in sc["profile"]["own"]]
                notes.append("  top total time:")
                notes += [f"    {pct:5.1f}%  {name}" for name, pct in sc["profile"]["total"]]
        busy = [
            f"{sc['name']} {sc['other_cores']:.2f}"
            for sc in store["scenarios"]
            if sc["other_cores"] >= 0.2
        ]
        if busy:
            notes.append("other processes were busy during: " + ", ".join(busy) + " (cores)")
        wrk = max((sc["wrk_cores"] for sc in store["scenarios"]), default=0.0)
        notes.append(f"wrk used at most {wrk:.2f} cores (median of runs)")
        out += ["", *notes]
    ratios = doc["comparison"].get("postgresql_over_sqlite_rps")
    if ratios:
        out += [
            "",
            "PostgreSQL / SQLite requests/s: "
            + ", ".join(f"{k} {v:.0%}" for k, v in ratios.items()),
        ]
    out += ["", "Targets (issue 6):"]
    for t in doc["targets"]:
        out.append(f"  [{t['verdict']}] {t['store']}: {t['target']}: {t['measured']}")
    out.append(
        "  [not measured] insert rate with 10M events already stored >= 80% of the empty store's"
    )
    for failure in doc.get("failed", []):
        out += ["", f"!!! {failure['database']} did not complete: {failure['error']}"]
    if doc["mismatches"]:
        out += [
            "",
            "!!! MISMATCH between acknowledged goals and stored events in: "
            + ", ".join(doc["mismatches"])
            + " !!!",
        ]
    return "\n".join(out)
