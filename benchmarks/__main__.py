"""``python -m benchmarks``: run every benchmark and print a table.

Poll passes with 100 and 1,000 plugs (whitegoodsd's pass and its ``--once``,
python-kasa, a sequential client), the same with 10% of the plugs silent
(python-kasa with its default retries and without), an HTTP plug's poll
over the same engine (next to aiohttp), the daemon's footprint (memory,
start-up, CPU busy and idle), the per-poll CPU of each plug family beside
the Kasa XOR poll, and the KLAP poll (Kasa and Tapo, session kept and new)
with python-kasa's beside it.
Everything runs on 127.0.0.1; the plugs are served by another process.  The
figures are printed next to the targets; nothing passes or fails.

``python -m benchmarks detection --traces DIR`` scores detection on recorded
traces instead (see benchmarks/detection.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from collections.abc import Sequence

from benchmarks import families, footprint, http, klap, mqtt, passes
from benchmarks.plugs import Farm, raise_nofile

DEAD_SHARE = 0.10


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def pass_rows(sizes: list[int], repeat: int, poll_timeout: float) -> list[passes.PassFigures]:
    figures = []
    for size in sizes:
        with Farm(size) as farm:
            figures.append(await passes.whitegoodsd_passes(farm, poll_timeout, repeat))
            figures.append(await passes.once_passes(farm, poll_timeout, repeat))
            figures.append(await passes.python_kasa_passes(farm, poll_timeout, repeat))
            figures.append(await passes.sequential_passes(farm, poll_timeout, repeat))
    return figures


async def dead_rows(
    sizes: list[int], poll_timeout: float, sequential_limit: float
) -> list[passes.PassFigures]:
    figures = []
    for size in sizes:
        dead = round(size * DEAD_SHARE)
        with Farm(size, silent=dead) as farm:
            figures.append(await passes.whitegoodsd_passes(farm, poll_timeout, 1, warm_up=False))
            figures.append(await passes.python_kasa_passes(farm, poll_timeout, 1, warm_up=False))
            figures.append(
                await passes.python_kasa_passes(farm, poll_timeout, 1, warm_up=False, retries=0)
            )
            if dead * poll_timeout <= sequential_limit:
                figures.append(await passes.sequential_passes(farm, poll_timeout, 1, warm_up=False))
    return figures


def print_passes(figures: list[passes.PassFigures]) -> None:
    rows = [
        [
            "client",
            "plugs",
            "wall / pass",
            "CPU / poll",
            "of it kernel",
            "failed",
            "wall ratio",
            "CPU ratio",
            "plugs' CPU / poll",
        ]
    ]
    ours = {f.plugs: f for f in figures if f.client == "whitegoodsd"}
    for f in figures:
        base = ours[f.plugs]
        rows.append(
            [
                f.client,
                f"{f.plugs:,}",
                ms(f.wall),
                us(f.cpu_per_poll),
                us(f.kernel_per_poll),
                f"{f.failed:,}",
                f"{f.wall / base.wall:.2f}x",
                f"{f.cpu_per_poll / base.cpu_per_poll:.2f}x",
                "" if f.farm_cpu_per_poll is None else us(f.farm_cpu_per_poll),
            ]
        )
    print(table(rows))


def print_http(figures: list[passes.PassFigures]) -> None:
    rows = [["client", "plugs", "wall / pass", "CPU / poll", "of it kernel", "failed", "CPU ratio"]]
    base = next(f for f in figures if f.client == "whitegoodsd HTTP")
    for f in figures:
        rows.append(
            [
                f.client,
                f"{f.plugs:,}",
                ms(f.wall),
                us(f.cpu_per_poll),
                us(f.kernel_per_poll),
                f"{f.failed:,}",
                f"{f.cpu_per_poll / base.cpu_per_poll:.2f}x",
            ]
        )
    print(table(rows))


def print_dead(figures: list[passes.PassFigures], poll_timeout: float) -> None:
    rows = [["client", "plugs", "silent", "wall / pass", "x timeout"]]
    for f in figures:
        rows.append(
            [
                f.client,
                f"{f.plugs:,}",
                f"{f.failed:,}",
                f"{f.wall:,.2f} s",
                f"{f.wall / poll_timeout:.2f}x",
            ]
        )
    print(table(rows))


def print_klap(figures: list[passes.PassFigures]) -> None:
    base = figures[0]  # whitegoodsd's XOR poll
    rows = [["client", "plugs", "wall / pass", "CPU / poll", "x XOR poll", "plugs' CPU / poll"]]
    for f in figures:
        rows.append(
            [
                f.client,
                f"{f.plugs:,}",
                ms(f.wall),
                us(f.cpu_per_poll),
                f"{f.cpu_per_poll / base.cpu_per_poll:.2f}x",
                "" if f.farm_cpu_per_poll is None else us(f.farm_cpu_per_poll),
            ]
        )
    print(table(rows))


def print_footprint(
    footprints: list[footprint.Footprint], idle: footprint.Idle, once: footprint.Once
) -> None:
    rows = [
        [
            "daemon",
            "first poll",
            "CPU by then",
            "RSS first pass",
            "RSS min..max",
            "passes",
            "CPU / pass",
        ]
    ]
    for fp in footprints:
        samples = (fp.rss_start, *fp.rss_samples)
        rows.append(
            [
                fp.label,
                ms(fp.first_poll),
                ms(fp.first_poll_cpu),
                mib(fp.rss_start),
                f"{mib(min(samples))} .. {mib(max(samples))}",
                f"{fp.passes:,}",
                us(fp.cpu_per_pass),
            ]
        )
    print(table(rows))
    print()
    cold = ", ".join(ms(p) for p in idle.passes)
    rows = [
        ["idle daemon", "value"],
        [f"CPU of a pass after a {idle.sleep:g} s sleep ({idle.plugs} plugs)", cold],
        [
            "CPU between passes",
            f"{idle.between * 1000:.4f} ms/s over {idle.watched:,.0f} s",
        ],
        [
            f"CPU per idle hour (a pass every {footprint.IDLE_INTERVAL:g} s)",
            ms(idle.per_idle_hour),
        ],
        [
            f"whitegoodsd --once, {once.plugs} plugs, whole process",
            f"{ms(once.wall)} wall, {ms(once.cpu)} CPU",
        ],
    ]
    print(table(rows))


def print_families(figures: list[families.FamilyFigures]) -> None:
    rows = [
        ["family", "password", "plugs", "wall / pass", "CPU / poll", "vs Kasa", "plugs' CPU / poll"]
    ]
    kasa = next(f for f in figures if f.family == "kasa")
    for f in figures:
        rows.append(
            [
                f.family,
                "yes" if f.password else "no",
                f"{f.plugs:,}",
                ms(f.wall),
                us(f.cpu_per_poll),
                f"{f.cpu_per_poll / kasa.cpu_per_poll:.2f}x",
                "" if f.farm_cpu_per_poll is None else us(f.farm_cpu_per_poll),
            ]
        )
        if f.failed:
            rows[-1][0] += f" ({f.failed} failed)"
    print(table(rows))


def print_mqtt(messages: list[mqtt.MessageFigures], delays: list[mqtt.DelayFigures]) -> None:
    rows = [["client", "messages", "wall", "CPU / message"]]
    for m in messages:
        rows.append([m.client, f"{m.messages:,}", ms(m.wall), us(m.cpu_per_message)])
    print(table(rows))
    print()
    rows = [["publish -> FINISHED", "rounds", "median", "worst"]]
    for d in delays:
        rows.append([d.case, f"{d.rounds}", ms(d.median), ms(d.worst)])
    print(table(rows))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_targets(
    figures: list[passes.PassFigures],
    web: list[passes.PassFigures],
    dead: list[passes.PassFigures],
    fp: tuple[list[footprint.Footprint], footprint.Idle, footprint.Once] | None,
    poll_timeout: float,
) -> None:
    rows = [["target", "measured", ""]]
    by = {(f.client, f.plugs): f for f in figures}
    for size in sorted({f.plugs for f in figures}):
        theirs = by.get(("python-kasa", size))
        for client in ("whitegoodsd", "whitegoodsd --once"):
            ours = by.get((client, size))
            if ours and theirs:
                ratio = ours.cpu_per_poll / theirs.cpu_per_poll
                rows.append(
                    [
                        f"CPU/poll <= python-kasa's, {client} ({size:,} plugs)",
                        f"{us(ours.cpu_per_poll)} vs {us(theirs.cpu_per_poll)}: {ratio:.2f}",
                        verdict(ratio <= 1.0),
                    ]
                )
    over = {f.client: f for f in web}
    if "whitegoodsd HTTP" in over and "aiohttp (kept-open)" in over:
        ours, theirs = over["whitegoodsd HTTP"], over["aiohttp (kept-open)"]
        rows.append(
            [
                f"HTTP poll: CPU next to aiohttp's ({ours.plugs:,} plugs)",
                f"{us(ours.cpu_per_poll)} vs {us(theirs.cpu_per_poll)}: "
                f"{ours.cpu_per_poll / theirs.cpu_per_poll:.2f}",
                "",
            ]
        )
    if ("whitegoodsd", 1000) in by:
        wall = by["whitegoodsd", 1000].wall
        rows.append(["1,000-plug pass < 250 ms", ms(wall), verdict(wall < 0.25)])
    for f in dead:
        if f.client == "whitegoodsd":
            rows.append(
                [
                    f"10%-dead pass < 1.1 x timeout ({f.plugs:,} plugs)",
                    f"{f.wall / poll_timeout:.2f} x {poll_timeout:g} s",
                    verdict(f.wall < 1.1 * poll_timeout),
                ]
            )
    if fp is not None:
        footprints, idle, _ = fp
        for limit, each in zip((20, 25), footprints, strict=False):
            rows.append(
                [
                    f"RSS <= {limit} MiB ({each.label})",
                    mib(each.rss_max),
                    verdict(each.rss_max <= limit * 2**20),
                ]
            )
        for each in footprints:
            growth = each.rss_end - each.rss_start
            rows.append(
                [
                    f"RSS flat over {each.passes:,} passes ({each.label})",
                    f"{growth / 1024:+,.0f} KiB",
                    verdict(growth < 1 * 2**20),
                ]
            )
        first = footprints[0]
        rows.append(
            [
                f"start to first poll < 100 ms ({first.label})",
                f"{ms(first.first_poll)} ({ms(first.first_poll_cpu)} CPU)",
                verdict(first.first_poll < 0.1),
            ]
        )
        rows.append(["CPU per idle hour, as measured", ms(idle.per_idle_hour), ""])
    print(table(rows))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["detection"]:
        from benchmarks import detection

        return detection.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="100,1000", help="plug counts for the pass benchmarks")
    parser.add_argument("--repeat", type=int, default=10, help="passes per client and size")
    parser.add_argument("--timeout", type=float, default=2.0, help="poll timeout, seconds")
    parser.add_argument("--passes", type=int, default=10_000, help="footprint: passes to drive")
    parser.add_argument(
        "--idle-sleep", type=float, default=30.0, help="footprint: seconds between idle passes"
    )
    parser.add_argument(
        "--idle-passes", type=int, default=3, help="footprint: idle passes to watch"
    )
    parser.add_argument(
        "--only",
        choices=["passes", "http", "dead", "footprint", "families", "klap", "mqtt"],
        action="append",
        help="run only these",
    )
    parser.add_argument(
        "--family-plugs", type=int, default=100, help="families: plugs of each family"
    )
    parser.add_argument("--klap-plugs", type=int, default=100, help="plugs for the KLAP figures")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    only = set(args.only or ["passes", "http", "dead", "footprint", "families", "klap", "mqtt"])
    soft = raise_nofile(4 * max(sizes) + 256)
    print(
        f"whitegoodsd benchmarks: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, open-file limit {soft:,}; plugs served from another "
        "process on 127.0.0.1"
    )
    figures: list[passes.PassFigures] = []
    dead: list[passes.PassFigures] = []
    web: list[passes.PassFigures] = []
    fp = None
    if "passes" in only:
        print(
            f"\nPoll pass: {args.repeat} passes after a warm-up (wall: median; CPU: mean); "
            "CPU of the client process"
        )
        figures = asyncio.run(pass_rows(sizes, args.repeat, args.timeout))
        print_passes(figures)
    if "http" in only:
        size = max(sizes)
        print(
            f"\nHTTP: {size:,} Tasmota-style plugs over the engine (h11, a fresh connection "
            "per poll) next to the Kasa conversation and aiohttp (kept-open)"
        )
        web = asyncio.run(http.http_rows(size, args.timeout, args.repeat))
        print_http(web)
    if "dead" in only:
        print(
            f"\nDead plugs: {DEAD_SHARE:.0%} of the plugs accept and never answer; "
            f"timeout {args.timeout:g} s"
        )
        dead = asyncio.run(dead_rows(sizes, args.timeout, sequential_limit=30.0))
        print_dead(dead, args.timeout)
    if "klap" in only:
        print(
            f"\nKLAP: {args.klap_plugs} plugs, {args.repeat} passes after a warm-up; "
            "CPU of the client process"
        )
        print_klap(asyncio.run(klap.klap_rows(args.klap_plugs, args.repeat, args.timeout)))
    if "footprint" in only:
        print(f"\nFootprint: whitegoodsd -f watching {footprint.PLUGS} plugs")
        fp = footprint.run(args.passes, args.idle_sleep, args.idle_passes)
        print_footprint(*fp)
    if "families" in only:
        print(
            f"\nFamilies: {args.family_plugs} plugs of each, {args.repeat} passes after a "
            "warm-up; CPU of the client process per poll"
        )
        print_families(
            asyncio.run(families.all_families(args.family_plugs, args.timeout, args.repeat))
        )
    if "mqtt" in only:
        print(
            f"\nMQTT: {mqtt.MESSAGES:,} messages over {mqtt.APPLIANCES} appliances from "
            "mosquitto_pub (another process), CPU of the receiving process per message; "
            f"delay from a publish to FINISHED over {mqtt.ROUNDS} cycles"
        )
        print_mqtt(*mqtt.run())
    print("\nTargets")
    print_targets(figures, web, dead, fp, args.timeout)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
