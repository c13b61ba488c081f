//! `IpSet::contains` against a linear scan of `Vec<IpNet>`, at 10, 1,000 and 100,000 random IPv4
//! ranges (prefixes /20 to /32, like a blocklist). Half the probes fall inside a range.
//!
//! `cargo bench --bench ipset -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion};
use ipnet::{IpNet, Ipv4Net};
use portcullis::client_ip::IpSet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const PROBES: usize = 1_024;

fn random_nets(rng: &mut StdRng, n: usize) -> Vec<IpNet> {
    (0..n)
        .map(|_| {
            let prefix = rng.random_range(20..=32);
            let net = Ipv4Net::new(Ipv4Addr::from(rng.random::<u32>()), prefix)
                .expect("prefix is at most 32");
            IpNet::V4(net.trunc())
        })
        .collect()
}

fn probes(rng: &mut StdRng, nets: &[IpNet]) -> Vec<IpAddr> {
    (0..PROBES)
        .map(|i| {
            if i % 2 == 0 {
                IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()))
            } else {
                let IpNet::V4(net) = nets[rng.random_range(0..nets.len())] else {
                    unreachable!("only IPv4 ranges are generated")
                };
                let host_bits = u32::MAX.checked_shr(net.prefix_len().into()).unwrap_or(0);
                let offset = rng.random_range(0..=host_bits);
                IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) | offset))
            }
        })
        .collect()
}

fn contains(c: &mut Criterion) {
    let mut group = c.benchmark_group("ipset_contains");
    for size in SIZES {
        // Seeded per size so each size's data is the same on every run.
        let mut rng = StdRng::seed_from_u64(0x1b5e_7000 + size as u64);
        let nets = random_nets(&mut rng, size);
        let probes = probes(&mut rng, &nets);
        let set = IpSet::from_nets(nets.iter().copied());
        eprintln!("{size} ranges merge into {}", set.len());

        group.bench_with_input(BenchmarkId::new("IpSet", size), &size, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % PROBES;
                set.contains(black_box(probes[i]))
            });
        });
        group.bench_with_input(BenchmarkId::new("naive_scan", size), &size, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % PROBES;
                let ip = black_box(probes[i]);
                nets.iter().any(|net| net.contains(&ip))
            });
        });
    }
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out because the macro's
// generated `pub fn` cannot carry docs and the crate warns on missing docs.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    contains(&mut criterion);
    criterion.final_summary();
}
