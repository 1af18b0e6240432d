//! The figures both closed-loop programs print (e2e_client.rs and
//! group_commit.rs include this file with `#[path]`: each is compiled alone
//! by `rustc`).

/// `NOUN=N duration_s=S NOUN_s=R p50_us=P p99_us=Q` for the latencies (µs)
/// of the N operations that ended within `seconds`; sorts `latencies`.
pub fn summary(noun: &str, latencies: &mut [u32], seconds: f64) -> String {
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .copied()
            .unwrap_or(0)
    };
    format!(
        "{noun}={} duration_s={seconds:.3} {noun}_s={:.1} p50_us={} p99_us={}",
        latencies.len(),
        latencies.len() as f64 / seconds,
        percentile(50),
        percentile(99)
    )
}
