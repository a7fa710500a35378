#!/usr/bin/env python3
"""Feast 0.67 and feast-rs side by side, on the same data and machine, in one run.

Run through `scripts/bench compare`, which builds feast-rs, installs Feast in a virtual
environment and the services, and generates the data. For each workload the
two take turns (Feast first on even runs, feast-rs first on odd ones), so that
the machine's drift hits both; the table shows medians, the number of runs and
the ratio. Then the answers are compared: the online values of every driver,
and the point-in-time training frame row by row (against Feast's file store,
and, where that one drops rows or breaks ties its own way, its DuckDB store).

Feast runs in this process through its Python SDK; feast-rs runs one
`bench-compare` process per workload, timed inside that process, so neither
side pays for start-up in the figures.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
]
DRIVERS = 10_000
FEAST_DEFINITIONS = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = FileSource(name="driver_stats_source", path="{path}",
                    timestamp_field="event_timestamp", created_timestamp_column="created")
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats", entities=[driver], ttl=timedelta(days=1),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
            Field(name="avg_daily_trips", dtype=Int64)],
    source=source, online=True)
'''


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.work = tempfile.mkdtemp(prefix="feast-rs-compare-")
        self.data = os.path.join(self.work, "driver_stats.parquet")
        self.rows = {}  # workload -> {"Feast": [...], "feast-rs": [...]}
        self.notes = []
        self.repos = {}  # side -> a repository with the data materialized
        self.frames = {}  # side -> its historical frame

    # --- set-up ---------------------------------------------------------

    def generate(self):
        subprocess.run([f"{self.bin}/generate-driver-stats", "--drivers", str(DRIVERS),
                        "--hours", str(self.args.hours), "--out", self.data], check=True,
                       stdout=subprocess.DEVNULL)
        df = pd.read_parquet(self.data)
        self.start = df["event_timestamp"].min().to_pydatetime().replace(tzinfo=timezone.utc)
        self.end = df["event_timestamp"].max().to_pydatetime().replace(tzinfo=timezone.utc)
        # The large set: ten times the hours, for materialization.
        self.large = os.path.join(self.work, "driver_stats_large.parquet")
        if self.args.large_hours:
            subprocess.run([f"{self.bin}/generate-driver-stats", "--drivers", str(DRIVERS),
                            "--hours", str(self.args.large_hours), "--out", self.large], check=True,
                           stdout=subprocess.DEVNULL)
            large = pd.read_parquet(self.large, columns=["event_timestamp"])["event_timestamp"]
            self.large_span = (large.min().to_pydatetime().replace(tzinfo=timezone.utc),
                               large.max().to_pydatetime().replace(tzinfo=timezone.utc) + timedelta(hours=1))
            del large
        # 100k rows for write_to_online_store: 100k drivers, one hour.
        self.writes = os.path.join(self.work, "writes.parquet")
        subprocess.run([f"{self.bin}/generate-driver-stats", "--drivers", "100000", "--hours", "1",
                        "--out", self.writes], check=True, stdout=subprocess.DEVNULL)
        # 100k entity rows at random times over the data, and a row id to match on.
        rng = np.random.default_rng(7)
        span = int((self.end - self.start).total_seconds())
        times = [self.start + timedelta(seconds=int(s)) for s in rng.integers(0, span + 3600, 100_000)]
        self.entities = pd.DataFrame({
            "driver_id": rng.integers(1001, 1001 + DRIVERS, 100_000).astype("int64"),
            "event_timestamp": pd.to_datetime(times, utc=True).tz_convert(None).astype("datetime64[us]"),
        })
        self.entities_file = os.path.join(self.work, "entities.parquet")
        self.entities.to_parquet(self.entities_file, index=False)

    def repo(self, side, online="sqlite", offline="file", data=None):
        data = data or self.data
        d = tempfile.mkdtemp(prefix=f"{side}-", dir=self.work)
        os.makedirs(os.path.join(d, "data"))
        os.symlink(data, os.path.join(d, "data", "driver_stats.parquet"))
        if online == "sqlite":
            store = "  type: sqlite\n  path: data/online.db\n"
        else:
            store = f'  type: redis\n  connection_string: "127.0.0.1:{self.redis_port}"\n'
        registry = "data/registry.db"
        with open(os.path.join(d, "feature_store.yaml"), "w") as f:
            f.write(f"project: compare\nprovider: local\nregistry: {registry}\n"
                    f"online_store:\n{store}offline_store:\n  type: {offline}\n"
                    "entity_key_serialization_version: 3\n")
        if side == "feast":
            with open(os.path.join(d, "features.py"), "w") as f:
                # An absolute path: Feast's DuckDB store reads it from the
                # process' working directory, not the repository.
                f.write(FEAST_DEFINITIONS.replace("{path}", data))
            subprocess.run([self.args.feast, "apply"], cwd=d, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.run([f"{self.bin}/driver-stats", "apply"], cwd=d, check=True,
                           stdout=subprocess.DEVNULL)
        return d

    def feast_store(self, d):
        from feast import FeatureStore
        return FeatureStore(repo_path=d)

    def rs(self, *args):
        out = subprocess.run([f"{self.bin}/bench-compare", *map(str, args)], check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout)

    # --- workloads: each returns the figure (lower is better unless said) ---

    def materialize(self, side, large=False):
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
        data = self.large if large else self.data
        start, end = self.large_span if large else (self.start, self.end + timedelta(hours=1))
        if side == "Feast":
            fs = self.feast_store(self.repo("feast", data=data))
            t = time.perf_counter()
            fs.materialize(start, end, ["driver_hourly_stats"])
            return time.perf_counter() - t
        return self.rs("materialize", self.repo("rs", data=data), iso(start), iso(end))["seconds"]

    def write_online(self, side, online="sqlite"):
        if side == "Feast":
            fs = self.feast_store(self.repo("feast", online))
            df = pd.read_parquet(self.writes)
            t = time.perf_counter()
            fs.write_to_online_store("driver_hourly_stats", df)
            return time.perf_counter() - t
        return self.rs("write", self.repo("rs", online), self.writes)["seconds"]

    def materialized(self, side):
        """A repository of `side` with the data materialized (made once)."""
        if side not in self.repos:
            if side == "Feast":
                d = self.repo("feast")
                self.feast_store(d).materialize(self.start, self.end + timedelta(hours=1))
            else:
                d = self.repo("rs")
                iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
                self.rs("materialize", d, iso(self.start), iso(self.end + timedelta(hours=1)))
            self.repos[side] = d
        return self.repos[side]

    def read(self, side, n, repeats):
        d = self.materialized(side)
        if side == "feast-rs":
            r = self.rs("read", d, n, repeats)
            return r["p50"], r["p99"]
        fs = self.feast_store(d)
        rng = np.random.default_rng(11)
        times = []
        for _ in range(repeats):
            rows = [{"driver_id": int(x)} for x in rng.integers(1001, 1001 + DRIVERS, n)]
            t = time.perf_counter()
            fs.get_online_features(features=FEATURES, entity_rows=rows).to_dict()
            times.append(time.perf_counter() - t)
        times.sort()
        return times[len(times) // 2], times[round((len(times) - 1) * 0.99)]

    def historical(self, side, offline="file"):
        if side == "Feast":
            fs = self.feast_store(self.repo("feast", offline=offline))
            entities = pd.read_parquet(self.entities_file)
            entities["event_timestamp"] = entities["event_timestamp"].dt.tz_localize("UTC")
            t = time.perf_counter()
            df = fs.get_historical_features(entity_df=entities, features=FEATURES).to_df()
            return time.perf_counter() - t, df
        out = os.path.join(self.work, "rs-historical.parquet")
        r = self.rs("historical", self.repo("rs"), self.entities_file, out)
        return r["seconds"], pd.read_parquet(out)

    def serve(self, side, connections):
        """wrk against the server: (requests/s, p50 ms, p99 ms)."""
        d = self.materialized(side)
        port = free_port()
        if side == "Feast":
            cmd = [self.args.feast, "serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log",
                   "--max-requests", "0"]
        else:
            cmd = [f"{self.bin}/driver-stats", "serve", "--port", str(port)]
        server = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            wait_port(port)
            url = f"http://127.0.0.1:{port}/get-online-features"
            wrk(url, self.lua, 1, 1, 2)  # warm-up
            threads = 1 if connections == 1 else 2
            return wrk(url, self.lua, threads, connections, self.args.seconds)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    # --- the run ----------------------------------------------------------

    def record(self, workload, side, value):
        self.rows.setdefault(workload, {"Feast": [], "feast-rs": []})[side].append(value)

    def run(self):
        self.generate()
        self.lua = os.path.join(HERE, "get-online-features.lua")
        self.redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            wait_port(self.redis_port)
            for run in range(self.args.runs):
                order = ["Feast", "feast-rs"] if run % 2 == 0 else ["feast-rs", "Feast"]
                log(f"run {run + 1} of {self.args.runs}, {order[0]} first")
                rows = DRIVERS * self.args.hours
                for side in order:
                    self.record(f"materialize {rows:,} rows (s)", side, self.materialize(side))
                if self.args.large_hours:
                    for side in order:
                        self.record(f"materialize {DRIVERS * self.args.large_hours:,} rows (s)", side,
                                    self.materialize(side, large=True))
                for side in order:
                    self.record("write_to_online_store 100k rows, SQLite (s)", side, self.write_online(side))
                for side in order:
                    self.record("write_to_online_store 100k rows, Redis (s)", side,
                                self.write_online(side, "redis"))
                for side in order:
                    p50, p99 = self.read(side, 1, 1000)
                    self.record("online read 1 driver, p50 (ms)", side, p50 * 1e3)
                    self.record("online read 1 driver, p99 (ms)", side, p99 * 1e3)
                for side in order:
                    p50, p99 = self.read(side, 100, 200)
                    self.record("online read 100 drivers, p50 (ms)", side, p50 * 1e3)
                    self.record("online read 100 drivers, p99 (ms)", side, p99 * 1e3)
                for side in order:
                    seconds, df = self.historical(side)
                    self.record("historical retrieval 100k entity rows (s)", side, seconds)
                    self.frames[side] = df
                for side in order:
                    rps, p50, p99 = self.serve(side, 1)
                    self.record("HTTP, one client, p99 (ms)", side, p99)
                    self.record("HTTP, one client (requests/s, higher is better)", side, rps)
                for side in order:
                    rps, _, _ = self.serve(side, 8)
                    self.record("HTTP, 8 connections (requests/s, higher is better)", side, rps)
            self.check_online_values()
            self.check_historical()
        finally:
            redis.terminate()
            redis.wait()
        self.print_table()

    # --- correctness ------------------------------------------------------

    def check_online_values(self):
        fs = self.feast_store(self.materialized("Feast"))
        ids = list(range(1001, 1001 + DRIVERS))
        feast = fs.get_online_features(features=FEATURES, entity_rows=[{"driver_id": i} for i in ids]).to_dict()
        out = os.path.join(self.work, "rs-online.json")
        self.rs("online-values", self.materialized("feast-rs"), 1001, DRIVERS, out)
        with open(out) as f:
            ours = json.load(f)
        names = ours["metadata"]["feature_names"]
        mismatches = 0
        for col, name in enumerate(names[1:], start=1):
            theirs = feast[name]
            mine = ours["results"][col]["values"]
            for a, b in zip(theirs, mine):
                same = (a is None and b is None) or (
                    a is not None and b is not None and np.float32(a) == np.float32(b))
                mismatches += not same
        self.notes.append(f"online values: {DRIVERS} drivers x 3 features read from both stores after the same "
                          f"materialization: {mismatches} differ")
        self.online_mismatches = mismatches

    def check_historical(self):
        ours = self.frames["feast-rs"]
        entities = pd.read_parquet(self.entities_file)
        feast_file = self.frames["Feast"]
        _, feast_duck = self.historical("Feast", offline="duckdb")

        def compare(theirs, label):
            t = theirs.copy()
            t["event_timestamp"] = pd.to_datetime(t["event_timestamp"], utc=True).dt.tz_convert(None).astype("datetime64[us]")
            key = ["driver_id", "event_timestamp"]
            mine = ours.copy()
            mine["event_timestamp"] = pd.to_datetime(mine["event_timestamp"]).astype("datetime64[us]")
            # Duplicated entity rows have equal answers: compare the distinct keys.
            t = t.drop_duplicates(key).set_index(key).sort_index()
            m = mine.drop_duplicates(key).set_index(key).sort_index()
            missing = len(m.index.difference(t.index))
            both = m.index.intersection(t.index)
            differ = 0
            for name in ["conv_rate", "acc_rate", "avg_daily_trips"]:
                a = t.loc[both, name].astype("float64").to_numpy()
                b = m.loc[both, name].astype("float64").to_numpy()
                same = (np.isnan(a) & np.isnan(b)) | (a.astype("float32") == b.astype("float32"))
                differ += int((~same).sum())
            dup = len(entities) - len(entities.drop_duplicates(key))
            dropped = len(entities) - len(theirs)
            self.notes.append(f"historical frame vs Feast's {label} store: {len(entities):,} entity rows "
                              f"({dup} of them repeats of an earlier (driver, time)); feast-rs returned "
                              f"{len(ours):,} rows, in input order; Feast returned {len(theirs):,}"
                              + (f" (it dropped {dropped} rows)" if dropped else "")
                              + f"; {missing} distinct (driver, time) keys missing from Feast's answer; "
                              f"{differ} values differ among the {len(both):,} keys both answered")
            return missing, differ

        self.historical_file = compare(feast_file, "file")
        self.historical_duckdb = compare(feast_duck, "DuckDB")

    # --- output -----------------------------------------------------------

    def print_table(self):
        higher = lambda w: "higher is better" in w
        print(f"\nFeast 0.67 and feast-rs on the same machine, median of {self.args.runs} runs each, "
              f"taking turns; {DRIVERS} drivers x {self.args.hours} hours = {DRIVERS * self.args.hours:,} rows")
        print(f"| workload | Feast 0.67 | feast-rs | feast-rs is |")
        print(f"|---|---|---|---|")
        for w, sides in self.rows.items():
            f, r = statistics.median(sides["Feast"]), statistics.median(sides["feast-rs"])
            ratio = (r / f) if higher(w) else (f / r)
            fmt = lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.3f}"
            print(f"| {w} | {fmt(f)} | {fmt(r)} | {ratio:.1f}x {'faster' if ratio >= 1 else 'slower'} (n={len(sides['Feast'])}) |")
        print()
        for n in self.notes:
            print(f"- {n}")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def to_ms(s):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * f
    return float("nan")


def wrk(url, script, threads, connections, seconds):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", script, url], check=True, capture_output=True, text=True).stdout
    rps = p50 = p99 = float("nan")
    for line in out.splitlines():
        f = line.split()
        if line.strip().startswith("Requests/sec:"):
            rps = float(f[1])
        elif f[:1] == ["50%"]:
            p50 = to_ms(f[1])
        elif f[:1] == ["99%"]:
            p99 = to_ms(f[1])
        elif line.strip().startswith("Non-2xx"):
            raise RuntimeError(f"failed requests against {url}:\n{out}")
    return rps, p50, p99


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, help="feast-rs release binaries")
    p.add_argument("--feast", required=True, help="the `feast` command of the virtual environment")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--hours", type=int, default=100, help="hours of data per driver (100: 1M rows)")
    p.add_argument("--large-hours", type=int, default=1000,
                   help="hours per driver of the large set, for materialization (1000: 10M rows; 0: none)")
    p.add_argument("--seconds", type=int, default=10, help="each wrk run")
    args = p.parse_args()
    b = Bench(args)
    try:
        b.run()
    finally:
        shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
