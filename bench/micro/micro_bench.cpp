//! Micro benchmarks (Google Benchmark). Every ksvc benchmark sits next to the baseline it is
//! judged against, doing the same work:
//! - route lookup (probe_router);
//! - submit ring push/pop, single thread and contended;
//! - inline dispatch of the cheapest real Tier-1 op (a 1-byte write to /dev/null, which the
//!   backend turns into IORING_OP_WRITE) at batch 1, 8, 32, 128, next to raw liburing doing
//!   exactly that op at the same batches (and IORING_OP_NOP for scale);
//! - threaded-dispatcher round trip while the loop is busy (spinning) and idle (asleep);
//! - worker-pool round trip next to the direct syscall;
//! - Tier-0 getpid next to syscall(SYS_getpid).
//! Instances and rings are built before the timed loop. Every benchmark checks its results;
//! a wrong one fails the run (exit status 1), so a smoke run proves correctness too.
//!
//! The blocking facade: call() on a threaded instance runs on the calling thread (a Tier-2
//! syscall directly, a Tier-1 entry on the caller's private ring), so the call benchmarks and
//! their raw references are the same work on one thread; the loop thread sleeps meanwhile
//! (its CPU is not spent, not merely uncounted).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <ksvc/executor/submit_ring.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>
#include <ksvc/module/routers/static_router.hpp>

#include "../reference/raw_nop.hpp"

namespace {

namespace nr = ksvc::syscalls::native;

// Wrong results seen by any benchmark: SkipWithError alone does not change the exit status.
std::uint64_t g_wrong_results = 0;
void check(benchmark::State& state, std::uint64_t bad, const char* what) {
    if (!bad) return;
    g_wrong_results += bad;
    state.SkipWithError(what);
}

struct null_fd {
    int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ~null_fd() { ::close(fd); }
};

ksvc::instance_options opts(ksvc::dispatch_mode m) {
    ksvc::instance_options o;
    o.mode = m;
    return o;
}

// ---- route lookup ---------------------------------------------------------------------------

// A mix of tiers, in an order the branch predictor cannot learn in one pass.
template <class Router>
void route_lookups(benchmark::State& state, const Router& r) {
    std::array<std::uint32_t, 256> nrs{};
    std::uint32_t x = 12345;
    for (auto& n : nrs) {
        x = x * 1103515245u + 12345u;
        n = (x >> 8) % 460;
    }
    std::size_t i = 0;
    for (auto _ : state) {
        const ksvc::route_info ri = r.route(nrs[i++ & 255]);
        benchmark::DoNotOptimize(ri);
    }
    state.SetItemsProcessed(state.iterations());
}
void BM_route_lookup_probe_router(benchmark::State& state) { route_lookups(state, ksvc::probe_router{}); }
BENCHMARK(BM_route_lookup_probe_router);
// The same lookups through static_router (the table computed at compile time).
void BM_route_lookup_static_router(benchmark::State& state) {
    route_lookups(state, ksvc::static_router<ksvc::linux_6_18>{});
}
BENCHMARK(BM_route_lookup_static_router);

// ---- submit ring --------------------------------------------------------------------------

void BM_submit_ring_push_pop(benchmark::State& state) {
    ksvc::submit_ring ring(4096);
    ksvc::submit_entry e = ksvc::sys::getpid(), out;
    for (auto _ : state) {
        ring.try_push(e);
        ring.try_pop(out);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_submit_ring_push_pop);

void BM_submit_ring_contended(benchmark::State& state) {
    // One ring shared by every thread (each thread pushes then pops, so it ends each run empty).
    static ksvc::submit_ring ring(4096);
    ksvc::submit_entry e = ksvc::sys::getpid(), out;
    for (auto _ : state) {
        while (!ring.try_push(e)) {
        }
        while (!ring.try_pop(out)) {
        }
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_submit_ring_contended)->Threads(1)->Threads(2)->UseRealTime();

// ---- NOP-class throughput: inline dispatcher vs raw liburing ---------------------------------

// Inline dispatch of NOP-class batches, for the plain ring (default_instance's) and each ring
// feature preset.
// Counters are published (the default) unless `Counters` is false: BM_nop_inline_counters_off
// is the same loop without them (nop_batch32_counters_vs_off: what counting costs).
template <class Backend, bool Counters = true>
void BM_nop_inline_preset(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    ksvc::instance_options o = opts(ksvc::dispatch_mode::inline_mode);
    o.publish_counters = Counters;
    ksvc::instance<ksvc::probe_router, Backend, ksvc::fixed_pool, ksvc::eventfd_notifier, ksvc::heap_buffers> inst(o);
    if (Counters && !inst.counters()) state.SkipWithError(("counters not published: " + inst.counters_file().error()).c_str());
    null_fd nf;
    char byte = 'x';
    ksvc::submit_entry e = ksvc::sys::write(nf.fd, &byte, 1);
    std::vector<ksvc::completion_entry> done(batch);
    std::uint64_t bad = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < batch; ++i) {
            e.corr_id = i;
            bad += static_cast<bool>(inst.submit(e));
        }
        std::size_t got = 0;
        while (got < batch) {
            const std::size_t n = inst.wait_completions(std::span(done).subspan(got), -1);
            for (std::size_t k = 0; k < n; ++k) bad += done[got + k].result != 1;
            got += n;
        }
    }
    check(state, bad, "unexpected write result");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
    state.counters["ring_flags"] = inst.backend().setup_flags();
}
using coop_ring = ksvc::io_uring_backend<ksvc::coop_taskrun, ksvc::taskrun_flag>;
BENCHMARK(BM_nop_inline_preset<ksvc::basic_io_uring>)->Name("BM_nop_inline")->Arg(1)->Arg(8)->Arg(32)->Arg(128);
BENCHMARK(BM_nop_inline_preset<ksvc::basic_io_uring, false>)->Name("BM_nop_inline_counters_off")->Arg(1)->Arg(32);
// default_instance's backend: the same ring inside fallback_backend (one branch per call), for
// nop_batch*_composite_vs_ring: what holding the epoll fallback costs where io_uring serves.
BENCHMARK(BM_nop_inline_preset<ksvc::basic_io_uring_or_epoll>)->Name("BM_nop_inline_composite")->Arg(1)->Arg(32);
BENCHMARK(BM_nop_inline_preset<ksvc::sqpoll_io_uring>)->Name("BM_nop_inline_sqpoll")->Arg(1)->Arg(32);
BENCHMARK(BM_nop_inline_preset<coop_ring>)->Name("BM_nop_inline_coop")->Arg(1)->Arg(32);
BENCHMARK(BM_nop_inline_preset<ksvc::owner_thread_io_uring>)->Name("BM_nop_inline_owner")->Arg(1)->Arg(32);

void BM_nop_raw(benchmark::State& state) {
    const auto batch = static_cast<unsigned>(state.range(0));
    bench::raw::nop_ring ring(256);
    unsigned bad = 0;
    for (auto _ : state) bad += ring.run_batch(batch, bench::raw::nop_op::write_null);
    check(state, bad, "unexpected write result");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
    state.counters["ring_flags"] = ring.setup_flags();
}
BENCHMARK(BM_nop_raw)->Arg(1)->Arg(8)->Arg(32)->Arg(128);

void BM_nop_raw_opnop(benchmark::State& state) {
    const auto batch = static_cast<unsigned>(state.range(0));
    bench::raw::nop_ring ring(256);
    for (auto _ : state) benchmark::DoNotOptimize(ring.run_batch(batch, bench::raw::nop_op::nop));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_nop_raw_opnop)->Arg(1)->Arg(32);

void BM_write_null_syscall(benchmark::State& state) {
    null_fd nf;
    char byte = 'x';
    for (auto _ : state) benchmark::DoNotOptimize(::write(nf.fd, &byte, 1));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_write_null_syscall);

// ---- threaded dispatcher round trip -----------------------------------------------------------

void BM_threaded_call_busy(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::threaded));
    null_fd nf;
    char byte = 'x';
    const ksvc::submit_entry e = ksvc::sys::write(nf.fd, &byte, 1);
    std::uint64_t bad = 0;
    for (auto _ : state) bad += inst.call(e).result != 1;
    check(state, bad, "unexpected write result");
    state.SetItemsProcessed(state.iterations());
    state.counters["loop_sleeps"] = static_cast<double>(inst.loop().sleeps());
}
BENCHMARK(BM_threaded_call_busy)->UseRealTime();

// The same while other threads keep the instance's loop busy with submissions.
void BM_threaded_call_loaded(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::threaded));
    null_fd nf;
    char byte = 'x';
    const ksvc::submit_entry e = ksvc::sys::write(nf.fd, &byte, 1);
    std::atomic<bool> stop{false};
    std::thread load([&] {
        std::array<ksvc::completion_entry, 64> out{};
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 16; ++i) (void)inst.submit(e);
            std::size_t got = 0;
            while (got < 16 && !stop.load(std::memory_order_relaxed)) got += inst.wait_completions(out, 1);
        }
    });
    std::uint64_t bad = 0;
    for (auto _ : state) bad += inst.call(e).result != 1;
    stop = true;
    load.join();
    check(state, bad, "unexpected write result");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_threaded_call_loaded)->UseRealTime();

void BM_threaded_async_busy(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::threaded));
    null_fd nf;
    char byte = 'x';
    const ksvc::submit_entry e = ksvc::sys::write(nf.fd, &byte, 1);
    std::array<ksvc::completion_entry, 4> done{};
    for (auto _ : state) {
        (void)inst.submit(e);
        while (inst.poll(done) == 0) {
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_threaded_async_busy)->UseRealTime();

// The loop has gone to sleep (the pause exceeds the 50 µs spin) before every call.
void BM_threaded_call_idle(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::threaded));
    null_fd nf;
    char byte = 'x';
    const ksvc::submit_entry e = ksvc::sys::write(nf.fd, &byte, 1);
    std::uint64_t bad = 0;
    for (auto _ : state) {
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        const auto t0 = std::chrono::steady_clock::now();
        bad += inst.call(e).result != 1;
        state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    check(state, bad, "unexpected write result");
    state.SetItemsProcessed(state.iterations());
    state.counters["loop_sleeps"] = static_cast<double>(inst.loop().sleeps());
}
BENCHMARK(BM_threaded_call_idle)->UseManualTime()->Iterations(300);

// Raw liburing single op after the same pause, for the idle case.
void BM_raw_single_idle(benchmark::State& state) {
    bench::raw::nop_ring ring(256);
    std::uint64_t bad = 0;
    for (auto _ : state) {
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        const auto t0 = std::chrono::steady_clock::now();
        bad += ring.run_batch(1, bench::raw::nop_op::write_null);
        state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    check(state, bad, "unexpected write result");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_raw_single_idle)->UseManualTime()->Iterations(300);

// ---- worker pool round trip -----------------------------------------------------------------

void BM_worker_call_inline(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::inline_mode));
    const ksvc::submit_entry e = ksvc::sys::make(nr::getppid);
    const long want = ::getppid();
    std::uint64_t bad = 0;
    for (auto _ : state) bad += inst.call(e).result != want;
    check(state, bad, "unexpected getppid result");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_worker_call_inline)->UseRealTime();

// A Tier-2 call() on a threaded instance: the syscall runs on the calling thread.
void BM_call_tier2_threaded(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::threaded));
    const ksvc::submit_entry e = ksvc::sys::make(nr::getppid);
    const long want = ::getppid();
    std::uint64_t bad = 0;
    for (auto _ : state) bad += inst.call(e).result != want;
    check(state, bad, "unexpected getppid result");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_call_tier2_threaded)->UseRealTime();

void BM_getppid_syscall(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(::syscall(SYS_getppid));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_getppid_syscall);

// ---- Tier 0 ---------------------------------------------------------------------------------

void BM_tier0_getpid(benchmark::State& state) {
    ksvc::default_instance inst(opts(ksvc::dispatch_mode::inline_mode));
    const ksvc::submit_entry e = ksvc::sys::getpid();
    const long want = ::getpid();
    std::uint64_t bad = 0;
    for (auto _ : state) bad += inst.call(e).result != want;
    check(state, bad, "unexpected getpid result");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_tier0_getpid);

void BM_getpid_syscall(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(::syscall(SYS_getpid));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_getpid_syscall);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (g_wrong_results) {
        std::fprintf(stderr, "micro_bench: %llu wrong results\n", static_cast<unsigned long long>(g_wrong_results));
        return 1;
    }
    return 0;
}
