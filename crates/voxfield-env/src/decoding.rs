//! Bayesian position decoding — neurospatial 0.6.0's `bin_spikes_in_time` and
//! `decode_position` (Poisson likelihood, uniform or given prior, log-sum-exp
//! normalisation, degenerate rows uniform) with its estimates (MAP bin and
//! position, posterior mean, entropy in bits).
//!
//! The likelihood of time bin t at bin b is Σ_i c_ti·log(λ_ib·dt) − Σ_i λ_ib·dt
//! (rates floored at 1e-10): only the neurons that spiked in t are visited, so
//! its cost is the spike count × bins, not neurons × bins; time bins are
//! independent and run in parallel.

use rayon::prelude::*;

use crate::{Environment, Error, Result};

/// Rates are floored at this before the log (neurospatial's `min_rate`).
const MIN_RATE: f64 = 1e-10;
/// Time bins a grid may have, at most (a count matrix of that many rows).
const MAX_TIME_BINS: usize = 1 << 31;
/// Counts (time bins × trains) one binning may hold: 2^31 (16 GiB of int64).
const MAX_COUNT_CELLS: usize = 1 << 31;

/// The counts of `trains` on the grid `[t_start, t_start + n·dt]`: (counts,
/// n_time × n_neurons row-major; bin centres). Bins are `[edge, edge + dt)`,
/// the last closed on the right (numpy.histogram's rule); t_start defaults to
/// the first spike (0 with none), t_stop to the last spike + dt.
pub fn bin_spikes_in_time(
    trains: &[&[f64]],
    dt: f64,
    t_start: Option<f64>,
    t_stop: Option<f64>,
) -> Result<(Vec<i64>, Vec<f64>)> {
    check_dt(dt)?;
    let finite = || trains.iter().flat_map(|t| t.iter()).filter(|v| !v.is_nan());
    let t0 = match t_start {
        Some(t) => t,
        None => finite().copied().fold(f64::INFINITY, f64::min),
    };
    let t0 = if t0.is_finite() { t0 } else { 0.0 };
    let t1 = match t_stop {
        Some(t) if t <= t0 => {
            return Err(Error::invalid(format!(
                "t_stop ({t}) must be > t_start ({t0})."
            )))
        }
        Some(t) => t,
        None => finite().copied().fold(t0, f64::max) + dt,
    };
    if !(t0.is_finite() && t1.is_finite()) {
        return Err(Error::invalid(format!(
            "the time grid [{t0}, {t1}) is not finite"
        )));
    }
    let bins = ((t1 - t0) / dt + 1e-9).floor();
    if bins < 1.0 {
        return Err(Error::invalid(format!(
            "Span t_stop - t_start ({}) is smaller than one bin dt ({dt}); no whole time bin fits.",
            t1 - t0
        )));
    }
    if bins > MAX_TIME_BINS as f64 {
        return Err(Error::invalid(format!(
            "a grid of {bins:e} time bins is too large (at most {MAX_TIME_BINS}): raise dt"
        )));
    }
    let n = bins as usize;
    let k = trains.len();
    n.checked_mul(k.max(1)).filter(|&c| c <= MAX_COUNT_CELLS).ok_or_else(|| {
        Error::invalid(format!(
            "{n} time bins × {k} trains is over the {MAX_COUNT_CELLS} counts one call may hold: raise dt"
        ))
    })?;
    let edges: Vec<f64> = (0..=n).map(|i| t0 + dt * i as f64).collect();
    let mut counts = vec![0i64; n * k]; // n·k ≤ the bound checked above
    for (j, train) in trains.iter().enumerate() {
        for &v in train.iter() {
            // numpy.histogram on these edges: [e_i, e_{i+1}), the last bin closed.
            if !(v >= edges[0] && v <= edges[n]) {
                continue;
            }
            let i = edges
                .partition_point(|&e| e <= v)
                .saturating_sub(1)
                .min(n - 1);
            counts[i * k + j] += 1;
        }
    }
    let centres = edges[..n].iter().map(|e| e + dt / 2.0).collect();
    Ok((counts, centres))
}

fn check_dt(dt: f64) -> Result<()> {
    if dt.is_finite() && dt > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "dt must be a finite, strictly positive number, got {dt}"
        )))
    }
}

/// The prior over bins.
#[derive(Clone, Copy, Debug)]
pub enum Prior<'a> {
    Uniform,
    /// One distribution (n_bins), normalised here.
    Stationary(&'a [f64]),
    /// One per time bin (n_time × n_bins), each row normalised here.
    PerTime(&'a [f64]),
}

/// A decoding: the posterior and its estimates.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub n_time: usize,
    /// n_time × n_bins, every row summing to 1.
    pub posterior: Vec<f64>,
    /// The MAP bin of each time bin (the first maximum).
    pub map: Vec<usize>,
    /// Posterior-weighted mean of the bin centres (n_time × n_dims).
    pub mean: Vec<f64>,
    /// Entropy of each row in bits.
    pub entropy: Vec<f64>,
    /// The largest posterior probability of each row.
    pub peak: Vec<f64>,
    /// Encoding-model entries that were not finite (excluded as zero-rate).
    pub nonfinite: usize,
}

impl Environment {
    /// Decodes position from `counts` (n_time × n_neurons) with `rates`
    /// (n_neurons × n_bins, Hz) over bins of width `dt` s. Non-finite rates are
    /// excluded from their bin (NaN always; ±inf refused when `validate`);
    /// negative counts, rates or prior entries are refused when `validate`.
    pub fn decode_position(
        &self,
        counts: &[i64],
        n_neurons: usize,
        rates: &[f64],
        dt: f64,
        prior: Prior<'_>,
        validate: bool,
    ) -> Result<Decoded> {
        let nt = counts.len() / n_neurons.max(1);
        let cells = nt.checked_mul(self.n_bins());
        let mut posterior = Vec::new();
        if cells.is_none_or(|c| posterior.try_reserve_exact(c).is_err()) {
            return Err(Error::invalid(format!(
                "a posterior of {nt} time bins × {} bins does not fit in memory: use the summary",
                self.n_bins()
            )));
        }
        posterior.resize(cells.unwrap_or(0), 0.0);
        let mut d = self.decode_position_into(
            counts,
            n_neurons,
            rates,
            dt,
            prior,
            validate,
            Some(&mut posterior),
        )?;
        d.posterior = posterior;
        Ok(d)
    }

    /// [`Environment::decode_position`] writing the posterior into `posterior`
    /// (n_time × n_bins; the returned `Decoded` then holds an empty posterior):
    /// the caller's buffer is the only copy. With `None` only the estimates
    /// are kept (neurospatial's `decode_position_summary`): one row of
    /// posterior per thread, whatever the number of time bins.
    pub fn decode_position_into(
        &self,
        counts: &[i64],
        n_neurons: usize,
        rates: &[f64],
        dt: f64,
        prior: Prior<'_>,
        validate: bool,
        posterior: Option<&mut [f64]>,
    ) -> Result<Decoded> {
        check_dt(dt)?;
        let nb = self.n_bins();
        if n_neurons == 0 || rates.len() != n_neurons * nb {
            return Err(Error::invalid(format!(
                "encoding_models has {} values; expected (n_neurons, n_bins) = ({n_neurons}, {nb})",
                rates.len()
            )));
        }
        if !counts.len().is_multiple_of(n_neurons) {
            return Err(Error::invalid(
                "spike_counts is not whole rows of n_neurons",
            ));
        }
        let nt = counts.len() / n_neurons;
        if validate {
            if counts.iter().any(|&c| c < 0) {
                return Err(Error::invalid("spike_counts must be non-negative integers"));
            }
            if rates.iter().any(|r| r.is_infinite()) {
                return Err(Error::invalid(
                    "encoding_models contains infinite firing rates",
                ));
            }
            if rates.iter().any(|&r| r < 0.0) {
                return Err(Error::invalid(
                    "encoding_models contains negative firing rates",
                ));
            }
        }
        if !rates.iter().any(|r| r.is_finite()) {
            return Err(Error::invalid(
                "encoding_models has no finite bins: it carries no information to decode",
            ));
        }
        // log(λ·dt) per (neuron, bin) and the rate penalty per bin, over finite entries.
        let mut log_rate = vec![0.0; n_neurons * nb];
        let mut penalty = vec![0.0; nb];
        let mut nonfinite = 0;
        for i in 0..n_neurons {
            for b in 0..nb {
                let r = rates[i * nb + b];
                if r.is_finite() {
                    let e = r.max(MIN_RATE) * dt;
                    log_rate[i * nb + b] = e.ln();
                    penalty[b] -= e;
                } else {
                    nonfinite += 1;
                }
            }
        }
        if posterior.as_ref().is_some_and(|p| p.len() != nt * nb) {
            return Err(Error::invalid(
                "the posterior buffer is not n_time × n_bins",
            ));
        }
        let log_prior = self.log_prior(prior, nt, validate)?;
        let d = self.n_dims();
        // Row t of the posterior into `row`, its estimates returned (mean into `mu`).
        let decode_row = |t: usize, row: &mut [f64], mu: &mut [f64]| {
            row.copy_from_slice(&penalty);
            for (i, &c) in counts[t * n_neurons..(t + 1) * n_neurons]
                .iter()
                .enumerate()
            {
                if c != 0 {
                    let c = c as f64;
                    for (o, l) in row.iter_mut().zip(&log_rate[i * nb..(i + 1) * nb]) {
                        *o += c * l;
                    }
                }
            }
            match &log_prior {
                LogPrior::None => {}
                LogPrior::One(p) => row.iter_mut().zip(p).for_each(|(o, p)| *o += p),
                LogPrior::PerTime(p) => row
                    .iter_mut()
                    .zip(&p[t * nb..(t + 1) * nb])
                    .for_each(|(o, p)| *o += p),
            }
            normalise_row(row, &self.centers, d, mu)
        };
        let mut map = vec![0; nt];
        let mut mean = vec![0.0; nt * d];
        let mut entropy = vec![0.0; nt];
        let mut peak = vec![0.0; nt];
        let estimates = map
            .par_iter_mut()
            .zip(mean.par_chunks_mut(d))
            .zip(entropy.par_iter_mut())
            .zip(peak.par_iter_mut());
        let keep = |e: RowEstimates, m: &mut usize, h: &mut f64, pk: &mut f64| {
            (*m, *h, *pk) = (e.map, e.entropy, e.peak);
        };
        match posterior {
            Some(post) => post
                .par_chunks_mut(nb.max(1))
                .zip(estimates)
                .enumerate()
                .for_each(|(t, (row, (((m, mu), h), pk)))| keep(decode_row(t, row, mu), m, h, pk)),
            None => estimates.enumerate().for_each_init(
                || vec![0.0; nb],
                |row, (t, (((m, mu), h), pk))| keep(decode_row(t, row, mu), m, h, pk),
            ),
        }
        Ok(Decoded {
            n_time: nt,
            posterior: Vec::new(),
            map,
            mean,
            entropy,
            peak,
            nonfinite,
        })
    }

    /// The log of the normalised prior, clipped to [1e-10, 1] (neurospatial's rule).
    fn log_prior(&self, prior: Prior<'_>, nt: usize, validate: bool) -> Result<LogPrior> {
        let nb = self.n_bins();
        let check = |p: &[f64]| -> Result<()> {
            if validate && p.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(Error::invalid(
                    "prior entries must be finite and non-negative",
                ));
            }
            // A row without mass would silently become uniform after clipping.
            let empty = p
                .chunks(nb.max(1))
                .filter(|r| r.iter().sum::<f64>() <= 0.0)
                .count();
            if validate && empty > 0 {
                return Err(Error::invalid(format!(
                    "the prior has {empty} row(s) with zero total mass: each must have positive mass"
                )));
            }
            Ok(())
        };
        let logged = |p: &[f64]| -> Vec<f64> {
            let s: f64 = p.iter().sum();
            p.iter()
                .map(|&v| (if s > 0.0 { v / s } else { v }).clamp(1e-10, 1.0).ln())
                .collect()
        };
        Ok(match prior {
            Prior::Uniform => LogPrior::None,
            Prior::Stationary(p) => {
                if p.len() != nb {
                    return Err(Error::invalid(format!(
                        "1D prior must have shape ({nb},), got ({},)",
                        p.len()
                    )));
                }
                check(p)?;
                LogPrior::One(logged(p))
            }
            Prior::PerTime(p) => {
                if p.len() != nt * nb {
                    return Err(Error::invalid(format!(
                        "2D prior must have shape ({nt}, {nb}), got {} values",
                        p.len()
                    )));
                }
                check(p)?;
                LogPrior::PerTime(p.chunks(nb.max(1)).flat_map(logged).collect())
            }
        })
    }
}

enum LogPrior {
    None,
    One(Vec<f64>),
    PerTime(Vec<f64>),
}

/// What one posterior row gives besides itself.
struct RowEstimates {
    map: usize,
    entropy: f64,
    /// The largest probability (1/S: the maximum's e^0 over the sum).
    peak: f64,
}

/// exp(x − max) / Σ in place (log-sum-exp), with the row's MAP bin (the first
/// maximum), its posterior mean of `centres` into `mean` and its entropy in
/// bits: with y = x − max and S = Σ e^y the entropy is (ln S − Σ e^y·y / S) / ln 2,
/// so no logarithm per bin. A row whose max is not finite (all −inf, or NaN)
/// becomes uniform (neurospatial's `handle_degenerate="uniform"`).
fn normalise_row(row: &mut [f64], centres: &[f64], d: usize, mean: &mut [f64]) -> RowEstimates {
    match d {
        1 => normalise::<1>(row, centres, mean),
        2 => normalise::<2>(row, centres, mean),
        _ => normalise::<3>(row, centres, mean),
    }
}

fn normalise<const D: usize>(row: &mut [f64], centres: &[f64], mean: &mut [f64]) -> RowEstimates {
    let n = row.len();
    let (mut best, mut max) = (0, f64::NEG_INFINITY);
    let mut nan = false;
    for (b, &v) in row.iter().enumerate() {
        nan |= v.is_nan();
        if v > max {
            (best, max) = (b, v);
        }
    }
    let mut mu = [0.0; D];
    let centres = &centres[..n * D];
    if nan || !max.is_finite() {
        let u = 1.0 / n as f64;
        row.iter_mut().for_each(|v| *v = u);
        for c in centres.chunks_exact(D) {
            (0..D).for_each(|a| mu[a] += u * c[a]);
        }
        mean.copy_from_slice(&mu);
        return RowEstimates {
            map: 0,
            entropy: (n as f64).log2(),
            peak: u,
        };
    }
    SCRATCH.with(|s| {
        let mut y = s.borrow_mut();
        y.clear();
        y.extend(row.iter().map(|v| v - max));
        row.copy_from_slice(&y);
        crate::fastexp::exp_in_place(row);
        // Four independent running sums: a single chain waits on each addition.
        let (mut sum, mut ey, mut m4) = ([0.0; 4], [0.0; 4], [[0.0; D]; 4]);
        let (re, ye, ce) = (
            row.chunks_exact(4),
            y.chunks_exact(4),
            centres.chunks_exact(4 * D),
        );
        let tail = (re.remainder(), ye.remainder(), ce.remainder());
        for ((e, y), c) in re.zip(ye).zip(ce) {
            for l in 0..4 {
                sum[l] += e[l];
                ey[l] += if e[l] > 0.0 { e[l] * y[l] } else { 0.0 };
                (0..D).for_each(|a| m4[l][a] += e[l] * c[l * D + a]);
            }
        }
        for ((e, y), c) in tail.0.iter().zip(tail.1).zip(tail.2.chunks_exact(D)) {
            sum[0] += e;
            ey[0] += if *e > 0.0 { e * y } else { 0.0 };
            (0..D).for_each(|a| m4[0][a] += e * c[a]);
        }
        let sum = (sum[0] + sum[1]) + (sum[2] + sum[3]);
        let ey = (ey[0] + ey[1]) + (ey[2] + ey[3]);
        (0..D).for_each(|a| mu[a] = (m4[0][a] + m4[1][a]) + (m4[2][a] + m4[3][a]));
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
        mean.copy_from_slice(&mu.map(|m| m * inv));
        RowEstimates {
            map: best,
            entropy: ((sum.ln() - ey * inv) / std::f64::consts::LN_2).max(0.0),
            peak: inv,
        }
    })
}

thread_local! {
    /// One row of shifted log-likelihoods per thread.
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binning_follows_numpy_histogram() {
        let a = [0.01, 0.06, 0.07];
        let b = [0.03, 0.09, 0.1, -1.0, f64::NAN];
        let (c, centres) = bin_spikes_in_time(&[&a, &b], 0.025, Some(0.0), Some(0.1)).unwrap();
        assert_eq!(c, vec![1, 0, 0, 1, 2, 0, 0, 2]); // 0.1 is the last edge: in the last bin
        assert_eq!(centres.len(), 4);
        assert!((centres[0] - 0.0125).abs() < 1e-15);
        assert!(bin_spikes_in_time(&[&a], 0.0, None, None).is_err());
        assert!(bin_spikes_in_time(&[&a], 0.5, Some(0.0), Some(0.1)).is_err());
        let (c, _) = bin_spikes_in_time(&[&[], &[]], 1.0, None, None).unwrap();
        assert_eq!(c, vec![0, 0]);
    }

    #[test]
    fn rows_normalise_with_their_estimates() {
        let centres = [0.0, 10.0];
        let mut mean = [0.0];
        let mut r = [0.0, (2.0f64).ln()];
        let e = normalise_row(&mut r, &centres, 1, &mut mean);
        assert!((r[0] - 1.0 / 3.0).abs() < 1e-15 && (r[1] - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(e.map, 1);
        assert!((mean[0] - 20.0 / 3.0).abs() < 1e-12);
        let h = -(1.0f64 / 3.0) * (1.0f64 / 3.0).log2() - (2.0f64 / 3.0) * (2.0f64 / 3.0).log2();
        assert!((e.entropy - h).abs() < 1e-14);
        let mut d = [f64::NEG_INFINITY; 2];
        let e = normalise_row(&mut d, &centres, 1, &mut mean);
        assert_eq!(d, [0.5; 2]);
        assert_eq!((e.map, e.entropy, mean[0]), (0, 1.0, 5.0));
    }
}
