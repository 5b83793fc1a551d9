"""Spatial environments (issue 11): neurospatial 0.6.0 and voxfield.env side by side in
one run, on the rows of neurospatial's performance page and of the reference's
section C, plus smoothing at 10k, 100k and 1M bins (voxfield only: neurospatial's
dense kernel needs n² memory and ~n³ time there).

    .venv/bin/python bench/bench_env.py [--repeats 5] [--smooth-grids 20,30,50] [--skip-large]
                                        [--only queries,mapping,occupancy,smooth,rates,decode,cells,shuffle,large]
                                        [--shuffles 1000] [--shuffle-methods gaussian_kde,diffusion_kde]

Medians of `--repeats` runs; "uncached" neurospatial smoothing runs once per case
(the first call builds the dense kernel), voxfield's first call builds its sparse
generator. Results: bench/results/env.json.
"""
import argparse
import json
import os
import time
import warnings

import numpy as np
from _timing import median_time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def once(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def lattice(n, h=2.0):
    """Samples at the centres of an n×n lattice of bin size h: exactly n² bins."""
    c = (np.arange(n) + 0.5) * h
    x, y = np.meshgrid(c, c, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1)


def walk(n, span, seed=0, dt=1 / 30):
    rng = np.random.default_rng(seed)
    p = np.cumsum(rng.normal(0, 1.5, (n, 2)), axis=0) % (2 * span)
    p = np.where(p > span, 2 * span - p, p)
    return np.arange(n) * dt, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smooth-grids", default="20,30,50")
    ap.add_argument("--bandwidths", default="5,10")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--only", default="queries,mapping,occupancy,smooth,rates,decode,large")
    ap.add_argument("--decode-time-bins", type=int, default=10_000)
    ap.add_argument("--shuffles", type=int, default=1000)
    ap.add_argument("--shuffle-methods", default="gaussian_kde,diffusion_kde")
    ap.add_argument("--shuffle-repeats", type=int, default=3, help="voxfield runs per method (median)")
    # (also: track — the track rows alone)
    a = ap.parse_args()
    only = set(a.only.split(","))
    import neurospatial as ns
    from voxfield.env import Environment
    rows = []

    def row(name, n_bins, t_ns, t_vf, **extra):
        r = {"row": name, "n_bins": n_bins, "neurospatial_s": t_ns, "voxfield_s": t_vf,
             "speedup": (t_ns / t_vf) if (t_ns and t_vf) else None, **extra}
        rows.append(r)
        sp = f"{r['speedup']:.0f}×" if r["speedup"] else "—"
        ns_s = f"{t_ns * 1e3:.3f} ms" if t_ns is not None else "not run"
        print(f"{name:48} {n_bins:>9} {ns_s:>14} {t_vf * 1e3:12.3f} ms {sp:>8}", flush=True)

    print(f"{'row':48} {'bins':>9} {'neurospatial':>14} {'voxfield':>15} {'speedup':>8}")
    # Point → bin, neighbours, paths (C.1, C.2).
    for n in ([10, 100] if "queries" in only else []):
        pts = lattice(n)
        e_ns = ns.Environment.from_samples(pts, bin_size=2.0)
        e_vf = Environment.from_samples(pts, 2.0)
        assert e_ns.n_bins == e_vf.n_bins == n * n
        for m in [1000, 10000]:
            q = np.random.default_rng(m).uniform(0, 2 * n, (m, 2))
            np.testing.assert_array_equal(e_vf.bin_at(q), e_ns.bin_at(q))
            row(f"bin_at, grid {n}×{n}, {m} points", n * n, median_time(lambda: e_ns.bin_at(q), a.repeats),
                median_time(lambda: e_vf.bin_at(q), a.repeats))
        row(f"neighbors, grid {n}×{n}", n * n, median_time(lambda: e_ns.neighbors(n * n // 2), a.repeats),
            median_time(lambda: e_vf.neighbors(n * n // 2), a.repeats))
        row(f"path_between corner→corner, grid {n}×{n}", n * n,
            median_time(lambda: e_ns.path_between(0, n * n - 1), a.repeats),
            median_time(lambda: e_vf.path_between(0, n * n - 1), a.repeats))
        p, q2 = [1.0, 1.0], [2 * n - 1.0, 2 * n - 1.0]
        assert abs(e_vf.distance_between(p, q2) - e_ns.distance_between(p, q2)) < 1e-9
        row(f"distance_between, grid {n}×{n}", n * n, median_time(lambda: e_ns.distance_between(p, q2), a.repeats),
            median_time(lambda: e_vf.distance_between(p, q2), a.repeats))
    # A 1-D track of 200 bins (C.2's track row).
    if "queries" in only or "track" in only:
        from track_linearization import make_track_graph
        g = make_track_graph([(0.0, 0.0), (200.0, 0.0), (200.0, 200.0)], [(0, 1), (1, 2)])
        t_ns = ns.Environment.from_graph(g, [(0, 1), (1, 2)], 0.0, 2.0)
        t_vf = Environment.from_graph(g, [(0, 1), (1, 2)], 0.0, 2.0)
        nb = t_vf.n_bins
        assert t_vf.path_between(0, nb - 1) == t_ns.path_between(0, nb - 1)
        row("neighbors, track", nb, median_time(lambda: t_ns.neighbors(nb // 2), a.repeats),
            median_time(lambda: t_vf.neighbors(nb // 2), a.repeats))
        row("path_between end → end, track", nb, median_time(lambda: t_ns.path_between(0, nb - 1), a.repeats),
            median_time(lambda: t_vf.path_between(0, nb - 1), a.repeats))
        p1, p2 = [1.0, 0.0], [200.0, 199.0]
        assert abs(t_vf.distance_between(p1, p2) - t_ns.distance_between(p1, p2)) < 1e-9
        row("distance_between, track", nb, median_time(lambda: t_ns.distance_between(p1, p2), a.repeats),
            median_time(lambda: t_vf.distance_between(p1, p2), a.repeats))
        tq = np.random.default_rng(9).uniform(0, 200, (10_000, 2))
        np.testing.assert_allclose(t_vf.to_linear(tq), t_ns.to_linear(tq), rtol=1e-12)
        row("to_linear, track, 10k points", nb, median_time(lambda: t_ns.to_linear(tq), a.repeats),
            median_time(lambda: t_vf.to_linear(tq), a.repeats))
    # Nearest-bin mapping and interpolation (C.1, C.3).
    if "mapping" in only:
        from neurospatial.ops.binning import clear_kdtree_cache, map_points_to_bins as ns_map
        from voxfield.env import map_points_to_bins as vf_map
        for n in [10, 100]:
            pts = lattice(n)
            e_ns = ns.Environment.from_samples(pts, bin_size=2.0)
            fresh = [Environment.from_samples(pts, 2.0) for _ in range(a.repeats)]
            e_vf = fresh[0]
            for m in [1000, 10000]:
                q = np.random.default_rng(m).uniform(-1, 2 * n + 1, (m, 2))
                np.testing.assert_array_equal(vf_map(q, e_vf), ns_map(q, e_ns))

                def ns_uncached():
                    clear_kdtree_cache(e_ns)
                    return ns_map(q, e_ns)
                it = iter(fresh)
                row(f"map_points_to_bins uncached, grid {n}×{n}, {m} points", n * n, median_time(ns_uncached, a.repeats),
                    median_time(lambda: vf_map(q, next(it)), a.repeats))
                row(f"map_points_to_bins cached, grid {n}×{n}, {m} points", n * n,
                    median_time(lambda: ns_map(q, e_ns), a.repeats), median_time(lambda: vf_map(q, e_vf), a.repeats))
                row(f"map_points_to_bins closest_center, grid {n}×{n}, {m} points", n * n,
                    median_time(lambda: ns_map(q, e_ns, tie_break="closest_center"), a.repeats),
                    median_time(lambda: vf_map(q, e_vf, tie_break="closest_center"), a.repeats))
            if n == 10:
                # Hexagonal arena (w = 2, 200 × 200 cm), as the reference's C.1 row.
                hp = np.random.default_rng(7).uniform(0, 200, (400_000, 2))
                h_ns = ns.Environment.from_samples(hp, bin_size=2.0, layout="Hexagonal")
                h_fresh = [Environment.from_samples(hp, 2.0, layout="Hexagonal") for _ in range(a.repeats)]
                h_vf = h_fresh[0]
                q = np.random.default_rng(3).uniform(0, 200, (1000, 2))
                np.testing.assert_array_equal(vf_map(q, h_vf), ns_map(q, h_ns))
                np.testing.assert_array_equal(h_vf.bin_at(q), h_ns.bin_at(q))

                def hns_uncached():
                    clear_kdtree_cache(h_ns)
                    return ns_map(q, h_ns)
                it = iter(h_fresh)
                hb = h_ns.n_bins
                row("map_points_to_bins uncached, hexagonal w=2", hb, median_time(hns_uncached, a.repeats),
                    median_time(lambda: vf_map(q, next(it)), a.repeats))
                row("map_points_to_bins cached, hexagonal w=2", hb, median_time(lambda: ns_map(q, h_ns), a.repeats),
                    median_time(lambda: vf_map(q, h_vf), a.repeats))
                row("map_points_to_bins closest_center, hexagonal w=2", hb,
                    median_time(lambda: ns_map(q, h_ns, tie_break="closest_center"), a.repeats),
                    median_time(lambda: vf_map(q, h_vf, tie_break="closest_center"), a.repeats))
                row("bin_at, hexagonal w=2, 1000 points", hb, median_time(lambda: h_ns.bin_at(q), a.repeats),
                    median_time(lambda: h_vf.bin_at(q), a.repeats))
            if n == 100:
                f = np.random.default_rng(1).random(n * n)
                for m in [1000, 10000]:
                    q = np.random.default_rng(m).uniform(0, 2 * n, (m, 2))
                    for mode in ("nearest", "linear"):
                        np.testing.assert_allclose(e_vf.interpolate(f, q, mode=mode), e_ns.interpolate(f, q, mode=mode),
                                                   rtol=1e-12)
                        row(f"interpolate {mode}, grid {n}×{n}, {m} points", n * n,
                            median_time(lambda: e_ns.interpolate(f, q, mode=mode), a.repeats),
                            median_time(lambda: e_vf.interpolate(f, q, mode=mode), a.repeats))
    # Occupancy / bin_sequence (C.5).
    for n, samples in ([(50, 10_000), (50, 100_000), (100, 10_000), (100, 100_000)] if "occupancy" in only else []):
        pts = lattice(n)
        e_ns = ns.Environment.from_samples(pts, bin_size=2.0)
        e_vf = Environment.from_samples(pts, 2.0)
        t, pos = walk(samples, 2 * n - 1e-6, seed=samples)
        np.testing.assert_allclose(e_vf.occupancy(t, pos), e_ns.occupancy(t, pos), rtol=1e-10, atol=1e-12)
        row(f"occupancy, {samples} samples", n * n, median_time(lambda: e_ns.occupancy(t, pos), a.repeats),
            median_time(lambda: e_vf.occupancy(t, pos), a.repeats))
        row(f"bin_sequence, {samples} samples", n * n, median_time(lambda: e_ns.bin_sequence(t, pos), a.repeats),
            median_time(lambda: e_vf.bin_sequence(t, pos), a.repeats))
        if samples == 10_000:
            lin = lambda e: e.occupancy(t, pos, time_allocation="linear")
            np.testing.assert_allclose(lin(e_vf), lin(e_ns), rtol=1e-9, atol=1e-12)
            row(f"occupancy linear, {samples} samples", n * n, median_time(lambda: lin(e_ns), 1), median_time(lambda: lin(e_vf), a.repeats))
        tr = lambda e: e.transitions(times=t, positions=pos)
        np.testing.assert_allclose(tr(e_vf).toarray(), tr(e_ns).toarray(), rtol=1e-12)
        row(f"transitions (empirical), {samples} samples", n * n, median_time(lambda: tr(e_ns), a.repeats),
            median_time(lambda: tr(e_vf), a.repeats))
    # Smoothing (C.4): neurospatial's first call builds the dense kernel.
    for n in ([int(x) for x in a.smooth_grids.split(",")] if "smooth" in only else []):
        for bw in [float(x) for x in a.bandwidths.split(",")]:
            pts = lattice(n)
            e_ns = ns.Environment.from_samples(pts, bin_size=2.0)
            e_vf = Environment.from_samples(pts, 2.0)
            f = np.random.default_rng(n).random(n * n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_ns, want = once(lambda: e_ns.smooth(f, bw))
            t_vf, got = once(lambda: e_vf.smooth(f, bw))
            err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
            row(f"smooth first call, grid {n}×{n}, bw {bw:g}", n * n, t_ns, t_vf, max_rel_err=err)
            # The performance guide's repeated smoothing: compute_kernel(cache=True), then smooth.
            # voxfield then applies its cached dense kernel (up to MAX_KERNEL_BINS bins).
            if n * n <= 10_000:
                e_vf.compute_kernel(bw)
            row(f"smooth cached, grid {n}×{n}, bw {bw:g}", n * n, median_time(lambda: e_ns.smooth(f, bw), a.repeats),
                median_time(lambda: e_vf.smooth(f, bw), a.repeats))
    # Rate maps: 100 units over one hour of 30 Hz tracking (108k samples), 10k-bin arena,
    # with Skaggs information. neurospatial's diffusion_kde builds the dense 10k kernel
    # first (hours here, C.5b), so it runs on a 900-bin arena side by side instead.
    from voxfield.env import compute_spatial_rates
    from neurospatial.encoding import compute_spatial_rates as ns_rates
    for n, run_ns in ([(30, True), (100, False)] if "rates" in only else []):
        pts = lattice(n)
        e_vf = Environment.from_samples(pts, 2.0)
        t, pos = walk(108_000, 2 * n - 1e-6, seed=5)
        rng = np.random.default_rng(6)
        centres = rng.uniform(0, 2 * n, (100, 2))
        trains = []
        for c in centres:
            rate = 15 * np.exp(-np.sum((pos - c) ** 2, axis=1) / (2 * 8.0 ** 2))
            k = rng.random(len(t)) < rate / 30
            trains.append(t[k])

        def vf():
            r = compute_spatial_rates(e_vf, trains, t, pos, bandwidth=5.0)
            return r.spatial_information()
        t_vf = median_time(vf, 3)
        t_ns = None
        if run_ns:
            e_ns = ns.Environment.from_samples(pts, bin_size=2.0)

            def nsf():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    e_ns.clear_cache()
                    return ns_rates(e_ns, trains, t, pos, bandwidth=5.0).spatial_information()
            t_ns, want = once(nsf)
            np.testing.assert_allclose(vf(), want, rtol=1e-8)
        row(f"100 rate maps + Skaggs info, 108k samples, {n}×{n}", n * n, t_ns, t_vf)
        t_g = median_time(lambda: compute_spatial_rates(e_vf, trains, t, pos, bandwidth=5.0,
                                                smoothing_method="gaussian_kde").spatial_information(), 3)
        tg_ns = None
        if run_ns:
            def nsg():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return ns_rates(e_ns, trains, t, pos, bandwidth=5.0,
                                    smoothing_method="gaussian_kde").spatial_information()
            tg_ns, want = once(nsg)
            got = compute_spatial_rates(e_vf, trains, t, pos, bandwidth=5.0,
                                        smoothing_method="gaussian_kde").spatial_information()
            np.testing.assert_allclose(got, want, rtol=1e-8)
        row(f"100 rate maps gaussian_kde + info, 108k samples, {n}×{n}", n * n, tg_ns, t_g)
        if run_ns:
            from neurospatial.encoding import detect_place_fields as ns_fields
            from voxfield.env import detect_place_fields as vf_fields
            rates = compute_spatial_rates(e_vf, trains, t, pos, bandwidth=5.0).firing_rates
            assert [[list(f) for f in vf_fields(e_vf, r)] for r in rates] == \
                [[list(f) for f in ns_fields(e_ns, r)] for r in rates]
            row(f"detect_place_fields, 100 units, {n}×{n}", n * n,
                median_time(lambda: [ns_fields(e_ns, r) for r in rates], a.repeats),
                median_time(lambda: [vf_fields(e_vf, r) for r in rates], a.repeats))
    # Bayesian decoding: 50 place cells, 25 ms bins, a 100×100 (10k-bin) arena. The posterior is
    # n_time × 10k float64 for both (neurospatial's full path holds ~3× that in flight), so the
    # issue's 10^5 time bins (8 GB each, ~24 GB for neurospatial) are scaled to --decode-time-bins.
    if "decode" in only:
        from neurospatial.decoding import bin_spikes_in_time as ns_bin, decode_position as ns_decode
        from voxfield.env import bin_spikes_in_time, decode_position
        rng = np.random.default_rng(9)
        e_ns = ns.Environment.from_samples(lattice(100), bin_size=2.0)
        e_vf = Environment.from_samples(lattice(100), 2.0)
        c = e_vf.bin_centers
        rates = 0.1 + 12 * np.exp(-((c[None] - rng.uniform(c.min(0), c.max(0), (50, 2))[:, None]) ** 2).sum(-1) / 200)
        nt, dt = a.decode_time_bins, 0.025
        trains = [np.sort(rng.uniform(0, nt * dt, rng.poisson(2.0 * nt * dt))) for _ in range(50)]
        row(f"bin_spikes_in_time, 50 units, {nt} bins", nt, median_time(lambda: ns_bin(trains, dt, 0.0, nt * dt), a.repeats),
            median_time(lambda: bin_spikes_in_time(trains, dt, 0.0, nt * dt), a.repeats))
        counts, _ = bin_spikes_in_time(trains, dt, 0.0, nt * dt)
        t_ns, want = once(lambda: ns_decode(e_ns, counts, rates, dt))
        t_vf, got = once(lambda: decode_position(e_vf, counts, rates, dt))
        err = float(np.max(np.abs(got.posterior - want.posterior)))
        del want
        row(f"decode_position, {nt} time bins × {e_vf.n_bins} bins, 50 units", e_vf.n_bins, t_ns,
            median_time(lambda: decode_position(e_vf, counts, rates, dt), a.repeats), max_abs_err=err)
        # The size, 10^5 time bins, through the summaries (no posterior held by either).
        from neurospatial.decoding import decode_position_summary as ns_summary
        from voxfield.env import decode_position_summary
        big = np.tile(counts, (10, 1))
        t_ns, want = once(lambda: ns_summary(e_ns, big, rates, dt))
        t_vf, got = once(lambda: decode_position_summary(e_vf, big, rates, dt))
        assert (got.map_bin == want.map_bin).all()
        err = float(np.max(np.abs(got.mean_position - want.mean_position)))
        row(f"decode_position_summary, {len(big)} time bins × {e_vf.n_bins} bins, 50 units", e_vf.n_bins, t_ns,
            t_vf, max_abs_err=err)
    if "cells" in only:
        cells_rows(a, ns, Environment, row)
    if "shuffle" in only:
        shuffle_rows(a, ns, Environment, row)
    if not a.skip_large and "large" in only:
        for n in [100, 316, 1000]:
            e_vf = Environment.from_samples(np.array([[0.0, 0.0], [2.0 * n - 1e-9, 2.0 * n - 1e-9]]), 2.0,
                                            infer_active_bins=False)
            f = np.random.default_rng(0).random(e_vf.n_bins)
            t_vf, y = once(lambda: e_vf.smooth(f, 5.0))
            mass = float(abs((y * e_vf.bin_sizes).sum() - f.sum()) / f.sum())
            row(f"smooth (density, bw 5), grid {n}×{n}", e_vf.n_bins, None, t_vf, mass_error=mass,
                neurospatial="not run: dense n² kernel")
            f8 = np.random.default_rng(1).random((e_vf.n_bins, 8))
            row(f"smooth 8 fields at once, grid {n}×{n}", e_vf.n_bins, None, median_time(lambda: e_vf.smooth(f8, 5.0), 3))
    os.makedirs(RESULTS, exist_ok=True)
    name = "env.json" if only >= {"queries", "mapping", "occupancy", "smooth", "rates", "large"} else \
        f"env-{'-'.join(sorted(only))}.json"
    with open(os.path.join(RESULTS, name), "w") as fh:
        json.dump(rows, fh, indent=1)


def arena_session(n=100, units=100, minutes=20, seed=11):
    """A 2n-cm square arena of n×n 2-cm bins, a 30 Hz walk over it, and `units` grid-like
    cells firing ~2 Hz (Poisson in 1/30 s steps)."""
    t, pos = walk(minutes * 60 * 30, 2 * n - 1e-6, seed=seed)
    rng = np.random.default_rng(seed)
    trains = []
    for u in range(units):
        k = 4 * np.pi / (np.sqrt(3) * rng.uniform(30, 60))
        a0 = rng.uniform(0, np.pi / 3)
        g = sum(np.cos(k * (pos @ [np.cos(a0 + b), np.sin(a0 + b)])) for b in (0, np.pi / 3, 2 * np.pi / 3))
        rate = 4.0 * np.maximum(g, 0) + 0.2
        trains.append(t[rng.random(len(t)) < rate / 30])
    return t, pos, trains


def cells_rows(a, ns, Environment, row):
    """Grid and border scores of 100 rate maps on a 100×100 grid, both packages."""
    from neurospatial.encoding import _metrics as ns_metrics
    from voxfield.env import batch_border_scores, batch_grid_scores
    pts = lattice(100)
    e_ns, e_vf = ns.Environment.from_samples(pts, bin_size=2.0), Environment.from_samples(pts, 2.0)
    t, pos, trains = arena_session(units=100)
    from voxfield.env import compute_spatial_rates
    rates = compute_spatial_rates(e_vf, trains, t, pos, smoothing_method="gaussian_kde", bandwidth=5.0).firing_rates
    want = ns_metrics.batch_grid_scores(e_ns, rates).scores
    got = batch_grid_scores(e_vf, rates).scores
    err = float(np.nanmax(np.abs(got - want)))
    row("batch_grid_scores, 100 maps, 100×100", e_vf.n_bins, median_time(lambda: ns_metrics.batch_grid_scores(e_ns, rates), 3),
        median_time(lambda: batch_grid_scores(e_vf, rates), a.repeats), max_abs_err=err)
    want = ns_metrics.batch_border_scores(e_ns, rates).scores
    err = float(np.nanmax(np.abs(batch_border_scores(e_vf, rates).scores - want)))
    row("batch_border_scores, 100 maps, 100×100", e_vf.n_bins,
        median_time(lambda: ns_metrics.batch_border_scores(e_ns, rates), 3),
        median_time(lambda: batch_border_scores(e_vf, rates), a.repeats), max_abs_err=err)


def shuffle_rows(a, ns, Environment, row):
    """The issue's target: `--shuffles` spike-time shuffles x 100 units on a 10k-bin arena with
    grid scores (and Skaggs information). neurospatial has no such loop: its equivalent (shift
    the trains, compute_spatial_rates, batch_grid_scores, per shuffle) is timed on 2 shuffles
    after one warm-up and scaled to the same count (stated in the row). voxfield's figure is the
    median of `--shuffle-repeats` runs for gaussian_kde, one run for diffusion_kde."""
    from neurospatial.encoding import compute_spatial_rates as ns_rates
    from neurospatial.encoding import _metrics as ns_metrics
    from voxfield.env import shuffle_spatial_scores
    pts = lattice(100)
    e_ns, e_vf = ns.Environment.from_samples(pts, bin_size=2.0), Environment.from_samples(pts, 2.0)
    t, pos, trains = arena_session(units=100)
    span = t[-1] - t[0]
    shifts = np.random.default_rng(3).uniform(20.0, span - 20.0, (100, a.shuffles))
    for method in a.shuffle_methods.split(","):
        runs = [once(lambda: shuffle_spatial_scores(e_vf, trains, t, pos, shifts=shifts,
                                                    scores=("spatial_information", "grid_score"),
                                                    smoothing_method=method, bandwidth=5.0))
                for _ in range(a.shuffle_repeats if method == "gaussian_kde" else 1)]
        t_vf, r = float(np.median([x[0] for x in runs])), runs[0][1]
        print(f"  voxfield runs: {', '.join(f'{x[0]:.1f} s' for x in runs)}", flush=True)
        maps = 100 * (a.shuffles + 1)
        t_ns = None
        err = None
        if method == "gaussian_kde":
            def ns_shuffle(j):
                shifted = [t[0] + np.mod((s - t[0]) + shifts[u, j], span) for u, s in enumerate(trains)]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fr = ns_rates(e_ns, [np.sort(s) for s in shifted], t, pos, smoothing_method=method,
                                  bandwidth=5.0).firing_rates
                    return ns_metrics.batch_grid_scores(e_ns, fr).scores
            ns_shuffle(0)  # warm-up (kernels, caches)
            t2, want = once(lambda: [ns_shuffle(j) for j in range(2)])
            err = float(np.nanmax(np.abs(np.array(want).T - r.null["grid_score"][:, :2])))
            t_ns = t2 / 2 * (a.shuffles + 1)
        row(f"shuffles {a.shuffles} x 100 units, info + grid score, {method}", e_vf.n_bins, t_ns, t_vf,
            maps=maps, voxfield_ms_per_map=t_vf / maps * 1e3, max_abs_err=err,
            neurospatial="its loop timed on 2 shuffles, scaled" if t_ns else "not run: dense n² diffusion kernel")


if __name__ == "__main__":
    main()
