//! What one workload's demand state costs the operator in steady state, measured: the heap
//! held per workload (a counting global allocator) and the process RSS, after each of N
//! workloads resumed a pre-seeded history and ran some decisions, as the operator does; and
//! what persisting that state writes.
//!
//! Each workload is restored the way the operator restores it after a restart
//! (`DemandTracker::decode_at` of a stored history, then `Memory::restore`), then decided
//! every `--sync` seconds for `--hours`: record the measured demand, estimate (feeds the
//! forecaster, refits on schedule), apply the stabiliser, and persist when `needs_persist`
//! says so. `--live K` also builds K workloads from nothing, one decision per sync over the
//! whole history, to check that a restored workload holds what a long-running one holds.
//!
//! `cargo run --release -p skyfleet --example state_memory -- [--workloads N] [--days D]
//! [--hours H] [--sync S] [--live K] [--replica-millicores C] [--object-bytes B]`;
//! `hack/state-memory.sh` runs it with the defaults. `C` (700: a 1-core request at a 70 %
//! target) is what one replica carries, which decides when the decision memory is written;
//! `B` (4096) is the size of the MultiCloudWorkload whose status holds it, which etcd
//! rewrites with it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skyfleet::api::workload::ForecastSpec;
use skyfleet::decide::Memory;
use skyfleet::decide::demand::DemandTracker;

/// Counts the bytes live on the heap, so the state can be measured rather than computed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident set size in bytes, from /proc/self/statm (0 where there is none).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

struct Args {
    workloads: usize,
    days: u64,
    hours: u64,
    sync: u64,
    live: usize,
    replica_millicores: u64,
    object_bytes: usize,
}

fn args() -> Args {
    let mut a = Args {
        workloads: 1000,
        days: 7,
        hours: 2,
        sync: 15,
        live: 0,
        replica_millicores: 700,
        object_bytes: 4096,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        let Some(v) = value else {
            eprintln!(
                "usage: state_memory [--workloads N] [--days D] [--hours H] [--sync S] [--live K] [--replica-millicores C] [--object-bytes B]"
            );
            std::process::exit(2);
        };
        match pair[0].as_str() {
            "--workloads" => a.workloads = v as usize,
            "--days" => a.days = v,
            "--hours" => a.hours = v,
            "--sync" => a.sync = v.max(1),
            "--live" => a.live = v as usize,
            "--replica-millicores" => a.replica_millicores = v.max(1),
            "--object-bytes" => a.object_bytes = v as usize,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Workload `w`'s demand in cores at unix time `t`: a daily cycle of its own amplitude and
/// phase, a weekly dip, and deterministic noise.
fn demand(w: usize, t: i64) -> f64 {
    let mut seed = (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t as u64);
    seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let noise = ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
    let base = 2.0 + (w % 17) as f64;
    let day = ((t as f64 / 86_400.0 + (w % 24) as f64 / 24.0) * std::f64::consts::TAU).sin();
    let week = if (t / 86_400) % 7 >= 5 { 0.7 } else { 1.0 };
    (base * week * (1.0 + 0.4 * day) + 0.1 * base * noise).max(0.0)
}

/// What persisting did over the decisions run: the history goes to the WorkloadHistory,
/// the decision memory to the workload's status (counted as its text; etcd rewrites the
/// whole MultiCloudWorkload, `--object-bytes`).
#[derive(Default)]
struct Writes {
    history: usize,
    history_bytes: usize,
    memory: usize,
    memory_bytes: usize,
}

/// One decision's demand part, as `decide` runs it, and the persist that may follow.
fn decide(
    m: &mut Memory,
    spec: &ForecastSpec,
    w: usize,
    at: i64,
    sync: Duration,
    writes: &mut Writes,
) {
    let cores = demand(w, at);
    m.demand.record(at, cores);
    let estimate = m.demand.estimate(spec, Some(cores), None, sync);
    let hold = m
        .stabilizer
        .planned()
        .map_or(0.0, |p| p.min(estimate.horizon_peak));
    m.stabilizer
        .apply(at, estimate.cores.max(hold), Duration::from_secs(300));
    if m.memory_due() {
        writes.memory += 1;
        writes.memory_bytes += m.encode().len();
        m.memory_persisted();
    }
    if m.demand.persist_due() {
        writes.history += 1;
        writes.history_bytes += m.demand.encode().len();
        m.demand.persisted();
    }
}

fn main() {
    let a = args();
    let spec = ForecastSpec::default();
    let step = Duration::from_secs(60);
    let sync = Duration::from_secs(a.sync);
    let history_secs = a.days as i64 * 86_400;
    let now0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let start = now0 - history_secs;

    // The stored histories, as a previous process persisted them (built outside the count).
    let stored: Vec<String> = (0..a.workloads)
        .map(|w| {
            let mut t = DemandTracker::new(&spec, step);
            for i in 0..history_secs / 60 {
                let at = start + i * 60;
                t.record(at, demand(w, at));
            }
            t.encode()
        })
        .collect();
    let stored_bytes: usize = stored.iter().map(String::len).sum();

    let (live0, rss0) = (LIVE.load(Ordering::Relaxed), rss());
    let began = Instant::now();
    let mut memories = Vec::with_capacity(a.workloads);
    let mut writes = Writes::default();
    for (w, text) in stored.iter().enumerate() {
        let tracker = match DemandTracker::decode_at(text, &spec, step, now0) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("workload {w}: stored history refused: {e}");
                std::process::exit(1);
            }
        };
        let (mut m, _) = Memory::restore(tracker, "{}", now0);
        m.replica_cores = Some(a.replica_millicores as f64 / 1000.0);
        let decisions = a.hours as i64 * 3600 / a.sync as i64;
        for d in 0..decisions {
            decide(
                &mut m,
                &spec,
                w,
                now0 + d * a.sync as i64,
                sync,
                &mut writes,
            );
        }
        memories.push(m);
    }
    let elapsed = began.elapsed();
    let (live1, rss1) = (LIVE.load(Ordering::Relaxed), rss());
    let n = a.workloads.max(1);
    let per = (live1 - live0) / n;
    println!(
        "restored: {} workloads, {} days of {}s steps, then {} h of decisions every {} s ({:.1} s)",
        a.workloads,
        a.days,
        step.as_secs(),
        a.hours,
        a.sync,
        elapsed.as_secs_f64()
    );
    println!(
        "heap per workload: {per} bytes ({:.1} KiB); heap for all: {:.1} MiB; RSS delta: {:.1} MiB; peak heap {:.1} MiB",
        per as f64 / 1024.0,
        (live1 - live0) as f64 / 1048576.0,
        (rss1.saturating_sub(rss0)) as f64 / 1048576.0,
        PEAK.load(Ordering::Relaxed) as f64 / 1048576.0,
    );
    println!(
        "stored history at start: {:.0} bytes per workload",
        stored_bytes as f64 / n as f64
    );
    let secs = a.hours as f64 * 3600.0;
    let per_minute = |count: usize| count as f64 / n as f64 / (secs / 60.0);
    let mean = |bytes: usize, count: usize| bytes as f64 / count.max(1) as f64;
    let history_rate = writes.history_bytes as f64 / n as f64 / secs;
    let memory_rate =
        (writes.memory_bytes + writes.memory * a.object_bytes) as f64 / n as f64 / secs;
    println!(
        "history writes: {:.3} per workload per minute, {:.0} bytes each; memory writes: {:.3} per workload per minute, {:.0} bytes of text each (+ the {} byte object)",
        per_minute(writes.history),
        mean(writes.history_bytes, writes.history),
        per_minute(writes.memory),
        mean(writes.memory_bytes, writes.memory),
        a.object_bytes,
    );
    println!(
        "write rate: {:.1} B/s per workload, {:.1} KB/s at 1000 workloads (history {:.1}, memory {:.1})",
        history_rate + memory_rate,
        history_rate + memory_rate,
        history_rate,
        memory_rate,
    );

    if a.live > 0 {
        drop(memories);
        let live0 = LIVE.load(Ordering::Relaxed);
        let began = Instant::now();
        let mut kept = Vec::with_capacity(a.live);
        let mut writes = Writes::default();
        for w in 0..a.live {
            let mut m = Memory::new(DemandTracker::new(&spec, step));
            m.replica_cores = Some(a.replica_millicores as f64 / 1000.0);
            let decisions = (history_secs + a.hours as i64 * 3600) / a.sync as i64;
            for d in 0..decisions {
                decide(
                    &mut m,
                    &spec,
                    w,
                    start + d * a.sync as i64,
                    sync,
                    &mut writes,
                );
            }
            kept.push(m);
        }
        let per = (LIVE.load(Ordering::Relaxed) - live0) / a.live;
        println!(
            "live: {} workloads decided from nothing over {} days + {} h ({:.1} s): heap per workload {per} bytes ({:.1} KiB)",
            a.live,
            a.days,
            a.hours,
            began.elapsed().as_secs_f64(),
            per as f64 / 1024.0
        );
    }
}
