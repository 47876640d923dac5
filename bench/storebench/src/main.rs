//! storebench: embedded KV stores for "predictions awaiting their label".
//!
//! usage: storebench <store> <dir> [N] [labels] [expire]
//!   store: none | hashmap | rocksdb | fjall | redb (the latter three only if built with that feature)
//!
//! Workload (single thread):
//!   A "score":  insert ids rec-0000000000.. rec-(N-1) (14-byte keys, time order) with 56-byte
//!               random values, one write batch / transaction per 500 entries.
//!   B "label":  for `labels` random existing ids, in batches of 500: get the value, then write
//!               back a changed value (byte 0 = 1, "joined" mark), one batch per 500.
//!   C "expire": delete the oldest `expire` ids by key, in batches of 500; no manual compaction.
//! After each phase: du -sb (apparent) and du -sB1 (allocated) of <dir>, VmHWM/VmRSS, and
//! getrusage deltas (page faults, 512-byte blocks read/written, context switches).
//! After C: SETTLE_S (default 5) idle seconds, du again; then finish() (rocksdb flush,
//! fjall persist, redb durable commit), close, du again.
//! Prints one JSON object on stdout.

use std::path::{Path, PathBuf};
use std::time::Instant;

const BATCH: usize = 500;
const KLEN: usize = 14;
const VLEN: usize = 56;

type Key = [u8; KLEN];
type Val = [u8; VLEN];

// ---------------------------------------------------------------- CPU / memory probes (no deps)

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Timeval {
    tv_sec: i64,
    tv_usec: i64,
}
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Rusage {
    ru_utime: Timeval,
    ru_stime: Timeval,
    rest: [i64; 14],
}
#[repr(C)]
#[derive(Default)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}
extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    fn clock_gettime(clk: i32, tp: *mut Timespec) -> i32;
}
const RUSAGE_SELF: i32 = 0;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// process CPU (user+sys, all threads) in ns
fn proc_cpu_ns() -> u64 {
    let mut r = Rusage::default();
    unsafe { getrusage(RUSAGE_SELF, &mut r) };
    let tv = |t: Timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(r.ru_utime) + tv(r.ru_stime)
}
/// (minflt, majflt, inblock, oublock, nvcsw, nivcsw) of the whole process
fn rusage_counts() -> [i64; 6] {
    let mut r = Rusage::default();
    unsafe { getrusage(RUSAGE_SELF, &mut r) };
    // rest = maxrss ixrss idrss isrss minflt majflt nswap inblock oublock msgsnd msgrcv nsignals nvcsw nivcsw
    [r.rest[4], r.rest[5], r.rest[7], r.rest[8], r.rest[12], r.rest[13]]
}
/// calling (main) thread CPU in ns
fn thread_cpu_ns() -> u64 {
    let mut t = Timespec::default();
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            return rest.trim_start_matches(':').trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        }
    }
    0
}
/// `du -sb` (apparent bytes) of the store directory
fn du_sb(dir: &Path) -> u64 {
    du(dir, "-sb")
}
/// `du -s -B1` (allocated blocks, in bytes): differs from -sb for preallocated/sparse files
fn du_alloc(dir: &Path) -> u64 {
    du(dir, "-sB1")
}
fn du(dir: &Path, flag: &str) -> u64 {
    let out = std::process::Command::new("du").arg(flag).arg(dir).output().expect("du");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)
}

// ---------------------------------------------------------------- data

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn fill(&mut self, v: &mut [u8]) {
        for c in v.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
    }
}

/// `rec-0000123456`
#[inline]
fn make_key(id: u64) -> Key {
    let mut k = *b"rec-0000000000";
    let mut x = id;
    for i in (4..KLEN).rev() {
        k[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    k
}

// ---------------------------------------------------------------- stores

trait Store {
    fn insert_batch(&mut self, keys: &[Key], vals: &[Val]);
    /// get each key, write back a changed value; returns number of misses
    fn label_batch(&mut self, keys: &[Key]) -> usize;
    fn delete_batch(&mut self, keys: &[Key]);
    fn get(&mut self, key: &Key) -> Option<Vec<u8>>;
    /// untimed: make state persistent/closable (flush memtable, durable commit...)
    fn finish(&mut self) {}
    fn settings(&self) -> String;
}

#[inline]
fn mark(v: &[u8]) -> Val {
    let mut out = [0u8; VLEN];
    out.copy_from_slice(&v[..VLEN]);
    out[0] = 1; // "joined"
    out
}

// --- baseline
struct HashMapStore(std::collections::HashMap<Box<[u8]>, Box<[u8]>>);
impl Store for HashMapStore {
    fn insert_batch(&mut self, keys: &[Key], vals: &[Val]) {
        for (k, v) in keys.iter().zip(vals) {
            self.0.insert(Box::from(&k[..]), Box::from(&v[..]));
        }
    }
    fn label_batch(&mut self, keys: &[Key]) -> usize {
        let mut miss = 0;
        for k in keys {
            let nv = match self.0.get(&k[..]) {
                Some(v) => mark(v),
                None => {
                    miss += 1;
                    continue;
                }
            };
            self.0.insert(Box::from(&k[..]), Box::from(&nv[..]));
        }
        miss
    }
    fn delete_batch(&mut self, keys: &[Key]) {
        for k in keys {
            self.0.remove(&k[..]);
        }
    }
    fn get(&mut self, key: &Key) -> Option<Vec<u8>> {
        self.0.get(&key[..]).map(|v| v.to_vec())
    }
    fn settings(&self) -> String {
        "std HashMap<Box<[u8]>,Box<[u8]>>, default hasher (SipHash-1-3), no pre-sizing".into()
    }
}

// --- null store: harness overhead only (key formatting, value rng, batching)
struct NoneStore;
impl Store for NoneStore {
    fn insert_batch(&mut self, keys: &[Key], vals: &[Val]) {
        std::hint::black_box((keys, vals));
    }
    fn label_batch(&mut self, keys: &[Key]) -> usize {
        std::hint::black_box(keys);
        0
    }
    fn delete_batch(&mut self, keys: &[Key]) {
        std::hint::black_box(keys);
    }
    fn get(&mut self, key: &Key) -> Option<Vec<u8>> {
        // pretend state so the sanity check passes trivially
        let id: u64 = std::str::from_utf8(&key[4..]).unwrap().parse().unwrap();
        if id < 1_000_000 { None } else { let mut v = vec![0u8; VLEN]; v[0] = 1; Some(v) }
    }
    fn settings(&self) -> String {
        "no store: measures the harness (key formatting, rng values, batching)".into()
    }
}

// --- rocksdb
#[cfg(feature = "rocksdb")]
mod rocks {
    use super::*;
    pub struct RocksStore {
        pub db: rocksdb::DB,
        pub wo: rocksdb::WriteOptions,
    }
    pub fn open(dir: &Path) -> RocksStore {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir).expect("rocksdb open");
        let mut wo = rocksdb::WriteOptions::default();
        wo.disable_wal(true);
        wo.set_sync(false);
        RocksStore { db, wo }
    }
    impl Store for RocksStore {
        fn insert_batch(&mut self, keys: &[Key], vals: &[Val]) {
            let mut b = rocksdb::WriteBatch::default();
            for (k, v) in keys.iter().zip(vals) {
                b.put(k, v);
            }
            self.db.write_opt(b, &self.wo).unwrap();
        }
        fn label_batch(&mut self, keys: &[Key]) -> usize {
            let mut miss = 0;
            let mut b = rocksdb::WriteBatch::default();
            for k in keys {
                match self.db.get_pinned(k).unwrap() {
                    Some(v) => b.put(k, mark(&v)),
                    None => miss += 1,
                }
            }
            self.db.write_opt(b, &self.wo).unwrap();
            miss
        }
        fn delete_batch(&mut self, keys: &[Key]) {
            let mut b = rocksdb::WriteBatch::default();
            for k in keys {
                b.delete(k);
            }
            self.db.write_opt(b, &self.wo).unwrap();
        }
        fn get(&mut self, key: &Key) -> Option<Vec<u8>> {
            self.db.get(key).unwrap()
        }
        fn finish(&mut self) {
            // WAL is off: without a flush the memtable would be lost on close
            self.db.flush().unwrap();
        }
        fn settings(&self) -> String {
            "Options::default()+create_if_missing; WriteOptions disable_wal(true), sync(false); WriteBatch per 500; get_pinned for reads; crate default features (snappy,lz4,zstd,zlib,bzip2)".into()
        }
    }
}

// --- fjall
#[cfg(feature = "fjall")]
mod fj {
    use super::*;
    pub struct FjallStore {
        pub db: fjall::Database,
        pub ks: fjall::Keyspace,
    }
    pub fn open(dir: &Path) -> FjallStore {
        let db = fjall::Database::builder(dir).open().expect("fjall open");
        let ks = db.keyspace("pending", fjall::KeyspaceCreateOptions::default).expect("keyspace");
        FjallStore { db, ks }
    }
    impl Store for FjallStore {
        fn insert_batch(&mut self, keys: &[Key], vals: &[Val]) {
            let mut b = self.db.batch(); // durability None = no fsync
            for (k, v) in keys.iter().zip(vals) {
                b.insert(&self.ks, &k[..], &v[..]);
            }
            b.commit().unwrap();
        }
        fn label_batch(&mut self, keys: &[Key]) -> usize {
            let mut miss = 0;
            let mut b = self.db.batch();
            for k in keys {
                match self.ks.get(k).unwrap() {
                    Some(v) => b.insert(&self.ks, &k[..], &mark(&v)[..]),
                    None => miss += 1,
                }
            }
            b.commit().unwrap();
            miss
        }
        fn delete_batch(&mut self, keys: &[Key]) {
            let mut b = self.db.batch();
            for k in keys {
                b.remove(&self.ks, &k[..]);
            }
            b.commit().unwrap();
        }
        fn get(&mut self, key: &Key) -> Option<Vec<u8>> {
            self.ks.get(key).unwrap().map(|v| v.to_vec())
        }
        fn finish(&mut self) {
            self.db.persist(fjall::PersistMode::Buffer).unwrap();
        }
        fn settings(&self) -> String {
            "Database::builder defaults (32 MiB cache, journal on, lz4, auto journal flush-to-OS, no fsync); one keyspace; db.batch() per 500, durability None".into()
        }
    }
}

// --- redb
#[cfg(feature = "redb")]
mod rd {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
    pub struct RedbStore {
        pub db: redb::Database,
        /// REDB_DURABLE_EVERY=K: every K-th write txn commits with Durability::Immediate
        /// (0 = never; the default, as specified)
        pub durable_every: u64,
        pub txns: u64,
    }
    pub fn open(dir: &Path) -> RedbStore {
        std::fs::create_dir_all(dir).unwrap();
        let db = redb::Database::create(dir.join("store.redb")).expect("redb create");
        // create table durably once
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap();
        tx.commit().unwrap();
        let durable_every = std::env::var("REDB_DURABLE_EVERY").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        RedbStore { db, durable_every, txns: 0 }
    }
    impl RedbStore {
        fn wtx(&mut self) -> redb::WriteTransaction {
            self.txns += 1;
            let mut tx = self.db.begin_write().unwrap();
            if self.durable_every == 0 || self.txns % self.durable_every != 0 {
                tx.set_durability(redb::Durability::None).unwrap();
            }
            tx
        }
    }
    impl Store for RedbStore {
        fn insert_batch(&mut self, keys: &[Key], vals: &[Val]) {
            let tx = self.wtx();
            {
                let mut t = tx.open_table(T).unwrap();
                for (k, v) in keys.iter().zip(vals) {
                    t.insert(&k[..], &v[..]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        fn label_batch(&mut self, keys: &[Key]) -> usize {
            let mut miss = 0;
            let tx = self.wtx();
            {
                let mut t = tx.open_table(T).unwrap();
                for k in keys {
                    let nv = match t.get(&k[..]).unwrap() {
                        Some(g) => mark(g.value()),
                        None => {
                            miss += 1;
                            continue;
                        }
                    };
                    t.insert(&k[..], &nv[..]).unwrap();
                }
            }
            tx.commit().unwrap();
            miss
        }
        fn delete_batch(&mut self, keys: &[Key]) {
            let tx = self.wtx();
            {
                let mut t = tx.open_table(T).unwrap();
                for k in keys {
                    t.remove(&k[..]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        fn get(&mut self, key: &Key) -> Option<Vec<u8>> {
            let tx = self.db.begin_read().unwrap();
            let t = tx.open_table(T).unwrap();
            t.get(&key[..]).unwrap().map(|g| g.value().to_vec())
        }
        fn finish(&mut self) {
            // one durable (fsync) empty commit so the file is consistent on close
            let tx = self.db.begin_write().unwrap();
            tx.commit().unwrap();
        }
        fn settings(&self) -> String {
            format!("Database::create defaults (1 GiB cache); one write txn per 500 with Durability::None; every {}th txn Immediate (0=never); final empty Immediate commit in finish()", self.durable_every)
        }
    }
}

fn open_store(name: &str, dir: &Path) -> Box<dyn Store> {
    match name {
        "hashmap" => Box::new(HashMapStore(Default::default())),
        "none" => Box::new(NoneStore),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Box::new(rocks::open(dir)),
        #[cfg(feature = "fjall")]
        "fjall" => Box::new(fj::open(dir)),
        #[cfg(feature = "redb")]
        "redb" => Box::new(rd::open(dir)),
        other => {
            let _ = dir;
            panic!("store {other} not compiled in (features: rocksdb, fjall, redb)")
        }
    }
}

// ---------------------------------------------------------------- phases

struct Phase {
    name: &'static str,
    ops: u64,
    wall_ns: u64,
    cpu_ns: u64,
    thread_cpu_ns: u64,
    du_bytes: u64,
    du_alloc_bytes: u64,
    counts: [i64; 6],
    hwm_kb: u64,
    rss_kb: u64,
}
impl Phase {
    fn json(&self) -> String {
        let per = |x: u64| x as f64 / self.ops as f64;
        format!(
            "{{\"phase\":\"{}\",\"ops\":{},\"wall_ns_per_op\":{:.1},\"cpu_ns_per_op\":{:.1},\"main_thread_cpu_ns_per_op\":{:.1},\"wall_s\":{:.3},\"du_bytes\":{},\"du_alloc_bytes\":{},\"vmhwm_kb\":{},\"vmrss_kb\":{},\"minflt\":{},\"majflt\":{},\"inblock_512\":{},\"oublock_512\":{},\"nvcsw\":{},\"nivcsw\":{}}}",
            self.name, self.ops, per(self.wall_ns), per(self.cpu_ns), per(self.thread_cpu_ns),
            self.wall_ns as f64 / 1e9, self.du_bytes, self.du_alloc_bytes, self.hwm_kb, self.rss_kb,
            self.counts[0], self.counts[1], self.counts[2], self.counts[3], self.counts[4], self.counts[5]
        )
    }
}

fn run_phase(name: &'static str, ops: u64, dir: &Path, f: impl FnOnce()) -> Phase {
    let k0 = rusage_counts();
    let (w0, c0, t0) = (Instant::now(), proc_cpu_ns(), thread_cpu_ns());
    f();
    let wall_ns = w0.elapsed().as_nanos() as u64;
    let cpu_ns = proc_cpu_ns() - c0;
    let thread_cpu_ns = thread_cpu_ns() - t0;
    let k1 = rusage_counts();
    let mut counts = [0i64; 6];
    for i in 0..6 {
        counts[i] = k1[i] - k0[i];
    }
    Phase {
        name,
        ops,
        wall_ns,
        cpu_ns,
        thread_cpu_ns,
        du_bytes: du_sb(dir),
        du_alloc_bytes: du_alloc(dir),
        counts,
        hwm_kb: status_kb("VmHWM"),
        rss_kb: status_kb("VmRSS"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: storebench <hashmap|rocksdb|fjall|redb> <dir> [N=2000000] [labels=1000000] [expire=1000000]");
        std::process::exit(2);
    }
    let store_name = args[1].clone();
    let dir = PathBuf::from(&args[2]);
    let n: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(2_000_000);
    let labels: u64 = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let expire: u64 = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();

    let hwm_start = status_kb("VmHWM");
    let t_all = (Instant::now(), proc_cpu_ns());
    let mut store = open_store(&store_name, &dir);
    let settings = store.settings();
    let mut phases = Vec::new();

    // A: score
    let mut rng = Rng(0x5EED_0001);
    phases.push(run_phase("A_score", n, &dir, || {
        let mut keys = Vec::with_capacity(BATCH);
        let mut vals = Vec::with_capacity(BATCH);
        let mut id = 0u64;
        while id < n {
            keys.clear();
            vals.clear();
            let end = (id + BATCH as u64).min(n);
            for i in id..end {
                keys.push(make_key(i));
                let mut v = [0u8; VLEN];
                rng.fill(&mut v);
                v[0] = 0; // not joined yet
                vals.push(v);
            }
            store.insert_batch(&keys, &vals);
            id = end;
        }
    }));

    // B: label
    let mut misses = 0usize;
    let mut rng_b = Rng(0x5EED_0002);
    phases.push(run_phase("B_label", labels, &dir, || {
        let mut keys = Vec::with_capacity(BATCH);
        let mut done = 0u64;
        while done < labels {
            keys.clear();
            let end = (done + BATCH as u64).min(labels);
            for _ in done..end {
                keys.push(make_key(rng_b.next() % n));
            }
            misses += store.label_batch(&keys);
            done = end;
        }
    }));

    // C: expire oldest
    phases.push(run_phase("C_expire", expire, &dir, || {
        let mut keys = Vec::with_capacity(BATCH);
        let mut id = 0u64;
        while id < expire {
            keys.clear();
            let end = (id + BATCH as u64).min(expire);
            for i in id..end {
                keys.push(make_key(i));
            }
            store.delete_batch(&keys);
            id = end;
        }
    }));

    // settle (untimed): leave the store idle so background flush/compaction can run by itself
    let settle_s: u64 = std::env::var("SETTLE_S").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let s0 = proc_cpu_ns();
    std::thread::sleep(std::time::Duration::from_secs(settle_s));
    let settle_cpu_s = (proc_cpu_ns() - s0) as f64 / 1e9;
    let du_after_settle = du_sb(&dir);
    let du_alloc_after_settle = du_alloc(&dir);

    // sanity (untimed)
    let gone = store.get(&make_key(0)).is_none() && store.get(&make_key(expire.saturating_sub(1))).is_none();
    let kept = store.get(&make_key(n - 1)).map(|v| v.len() == VLEN).unwrap_or(false);
    let mut rng_c = Rng(0x5EED_0002);
    let first_labeled = rng_c.next() % n;
    let label_ok = if first_labeled >= expire {
        store.get(&make_key(first_labeled)).map(|v| v[0] == 1).unwrap_or(false)
    } else {
        true
    };

    // untimed: flush/durable commit, close, measure disk at rest
    let c0 = (Instant::now(), proc_cpu_ns());
    store.finish();
    let du_after_finish = du_sb(&dir);
    drop(store);
    let close_wall = c0.0.elapsed().as_secs_f64();
    let close_cpu = (proc_cpu_ns() - c0.1) as f64 / 1e9;
    let du_after_close = du_sb(&dir);
    let du_alloc_after_close = du_alloc(&dir);
    let total_wall = t_all.0.elapsed().as_secs_f64();
    let total_cpu = (proc_cpu_ns() - t_all.1) as f64 / 1e9;

    let ph: Vec<String> = phases.iter().map(|p| p.json()).collect();
    println!(
        "{{\"store\":\"{}\",\"settings\":\"{}\",\"n\":{},\"labels\":{},\"expire\":{},\"label_misses\":{},\"sanity_ok\":{},\"hwm_start_kb\":{},\"phases\":[{}],\"settle_s\":{},\"settle_cpu_s\":{:.3},\"du_after_settle\":{},\"du_alloc_after_settle\":{},\"finish_close_wall_s\":{:.3},\"finish_close_cpu_s\":{:.3},\"du_after_finish\":{},\"du_after_close\":{},\"du_alloc_after_close\":{},\"vmhwm_final_kb\":{},\"total_wall_s\":{:.3},\"total_cpu_s\":{:.3}}}",
        store_name, settings, n, labels, expire, misses, gone && kept && label_ok, hwm_start,
        ph.join(","), settle_s, settle_cpu_s, du_after_settle, du_alloc_after_settle, close_wall, close_cpu, du_after_finish, du_after_close, du_alloc_after_close, status_kb("VmHWM"), total_wall, total_cpu
    );
}
