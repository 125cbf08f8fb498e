//! The ksvc file copy: the same slot machine as the raw liburing reference (bench/reference/
//! copy_uring.cpp), with every read, write or splice submitted as an ordinary system call
//! (pread64/pwrite64, or splice(2) file -> pipe -> file) through a ksvc default_instance. With
//! --method copy_file_range it submits copy_file_range(2) itself (a Tier-2 call: the pool runs it)
//! until the file is copied, as the copy_file_range reference does directly.
//!
//! --preset fixed_buffer copies through ksvc::fixed_buffer_io_uring instead: each slot's chunk
//! is a lease of the instance's registered_buffers pool (qd buffers of `chunk` bytes, registered
//! with the ring), read and written with op::read_fixed / op::write_fixed (READ_FIXED /
//! WRITE_FIXED). A refused registration would silently turn those into plain pread/pwrite, so
//! the arm checks it first and exits with status 3 (and the ring's notes) rather than measure
//! plain I/O; it also counts the entries it built of each kind and reports them.
//!   copy_ksvc --src F --dst G [--mode threaded|inline] [--method rw|splice|copy_file_range] [--qd 16]
//!             [--chunk 262144] [--direct] [--preset default|fixed_buffer] [--spin-us 50]
#include <fcntl.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "../common/copy_common.hpp"

namespace {

struct slot : bench::chunk_storage {
    std::uint64_t pos = 0, end = 0;
    std::uint32_t len = 0, done = 0;
    bool writing = false;
    loff_t off_in = 0, off_out = 0; // splice advances these
};

} // namespace

template <class Instance>
int run(const bench::args& a, const std::string& preset) {
    // Registered buffers: every chunk is a lease of the instance's pool, read and written fixed.
    constexpr bool fixed = std::is_same_v<typename Instance::buffer_type, ksvc::registered_buffers>;
    const bool inline_mode = a.str("mode", "threaded") == "inline";
    const unsigned qd = static_cast<unsigned>(a.num("qd", 16));
    const unsigned chunk = static_cast<unsigned>(a.num("chunk", 256 * 1024));
    const bool splice = a.str("method", "rw") == "splice";
    if (fixed && a.str("method", "rw") != "rw") {
        std::fprintf(stderr, "copy_ksvc: --preset %s copies with --method rw only\n", preset.c_str());
        return 2;
    }
    bench::copy_files f(a.str("src"), a.str("dst"), a.flag("direct"), a.flag("overwrite"));

    ksvc::instance_options o;
    o.mode = inline_mode ? ksvc::dispatch_mode::inline_mode : ksvc::dispatch_mode::threaded;
    // Threaded idle spin (instance_options::spin); negative keeps the default.
    if (a.num("spin-us", -1) >= 0) o.spin = std::chrono::microseconds(a.num("spin-us", -1));
    if constexpr (fixed) {
        o.buffer_count = qd; // one registered buffer per slot, as large as a chunk
        o.buffer_size = chunk;
    }
    Instance inst(o);
    namespace nr = ksvc::syscalls::native;

    std::vector<slot> slots(qd);
    [[maybe_unused]] std::vector<ksvc::registered_buffers::lease> leases;
    if constexpr (fixed) {
        // The registration happens on the thread that drives the ring, before its first entry:
        // one call attaches it in either mode. Refused (RLIMIT_MEMLOCK, an old kernel), every
        // op::read_fixed below would be a plain pread: fail instead of measuring that.
        if (const ksvc::completion_entry c = inst.call(ksvc::op::nop()); !c.ok()) {
            std::fprintf(stderr, "copy_ksvc: the ring does not serve: %s\n", c.error().message().c_str());
            return 3;
        }
        if (!inst.buffers().is_registered() || inst.backend().resource_result(0) != 0) {
            std::fprintf(stderr, "copy_ksvc: registered_buffers refused (resource result %d): %s\n",
                         inst.backend().resource_result(0), inst.features().notes.c_str());
            return 3;
        }
        for (std::uint32_t i = 0; i < qd; ++i) {
            leases.push_back(inst.buffers().acquire(chunk));
            if (!leases.back() || !leases.back().registered()) bench::die("registered_buffers: acquire", ENOMEM);
            slots[i].buf = reinterpret_cast<unsigned char*>(leases.back().data().data());
        }
    } else {
        for (auto& s : slots) static_cast<bench::chunk_storage&>(s) = bench::make_chunk_storage(splice, chunk);
    }
    std::uint64_t next = 0, copied = 0, fixed_ops = 0, plain_ops = 0;
    unsigned inflight = 0;
    auto submit = [&](ksvc::submit_entry e, std::uint32_t i) {
        e.corr_id = i;
        if (e.number() == static_cast<std::uint32_t>(ksvc::operation::read_fixed) ||
            e.number() == static_cast<std::uint32_t>(ksvc::operation::write_fixed))
            ++fixed_ops;
        else
            ++plain_ops;
        while (auto ec = inst.submit(e)) {
            if (ec != ksvc::errc::ring_full) bench::die("ksvc submit", ec.value());
            if (inline_mode) inst.run_once(false);
            else std::this_thread::yield();
        }
        ++inflight;
    };
    auto start_read = [&](std::uint32_t i) {
        slot& s = slots[i];
        if (s.pos == s.end) {
            if (next >= f.size) return;
            s.pos = next;
            s.end = next + chunk < f.size ? next + chunk : f.size;
            next = s.end;
        }
        s.len = static_cast<std::uint32_t>(s.end - s.pos);
        s.done = 0;
        s.writing = false;
        if constexpr (fixed) {
            submit(ksvc::op::read_fixed(f.in, leases[i], s.len, s.pos), i);
        } else if (splice) {
            s.off_in = static_cast<loff_t>(s.pos);
            submit(ksvc::sys::make(nr::splice, f.in, &s.off_in, s.pipe_w, nullptr, s.len, 0u), i);
        } else {
            submit(ksvc::sys::pread(f.in, s.buf, s.len, static_cast<off_t>(s.pos)), i);
        }
    };
    auto start_write = [&](std::uint32_t i) {
        slot& s = slots[i];
        s.writing = true;
        if constexpr (fixed) {
            // The rest of a short write starts inside the registered buffer: the raw builder
            // names the same index (the kernel accepts any range within a registered buffer).
            if (s.done == 0) submit(ksvc::op::write_fixed(f.out, leases[i], s.len, s.pos), i);
            else submit(ksvc::op::write_fixed(f.out, s.buf + s.done, s.len - s.done, s.pos + s.done, leases[i].index()), i);
        } else if (splice) {
            s.off_out = static_cast<loff_t>(s.pos + s.done);
            submit(ksvc::sys::make(nr::splice, s.pipe_r, nullptr, f.out, &s.off_out, s.len - s.done, 0u), i);
        } else {
            submit(ksvc::sys::pwrite(f.out, s.buf + s.done, s.len - s.done, static_cast<off_t>(s.pos + s.done)), i);
        }
    };

    if (a.str("method", "rw") == "copy_file_range") {
        const std::uint64_t cpu0 = bench::self_cpu_us();
        const std::uint64_t t0 = bench::now_ns();
        while (copied < f.size) {
            const ksvc::completion_entry c =
                inst.call(ksvc::sys::make(nr::copy_file_range, f.in, nullptr, f.out, nullptr, f.size - copied, 0u));
            if (c.result <= 0) bench::die("copy_file_range", c.result < 0 ? static_cast<int>(-c.result) : EIO);
            copied += static_cast<std::uint64_t>(c.result);
        }
        const std::uint64_t t1 = bench::now_ns();
        const std::string arm = "ksvc_" + preset + (inline_mode ? "_inline" : "");
        bench::copy_result(arm.c_str(), "copy_file_range", f, copied, t0, t1, cpu0, bench::self_cpu_us(), 1, 0,
                           inst.backend().setup_flags());
        return copied == f.size ? 0 : 1;
    }

    std::vector<ksvc::completion_entry> done(256);
    const std::uint64_t cpu0 = bench::self_cpu_us();
    const std::uint64_t t0 = bench::now_ns();
    for (std::uint32_t i = 0; i < qd; ++i) start_read(i);
    while (inflight > 0) {
        const std::size_t n = inst.wait_completions(done, -1);
        for (std::size_t k = 0; k < n; ++k) {
            --inflight;
            const auto i = static_cast<std::uint32_t>(done[k].corr_id);
            slot& s = slots[i];
            if (done[k].result <= 0)
                bench::die(s.writing ? "write" : "read", done[k].result < 0 ? static_cast<int>(-done[k].result) : EIO);
            const auto got = static_cast<std::uint32_t>(done[k].result);
            if (!s.writing) {
                s.len = got;
                start_write(i);
            } else if ((s.done += got) < s.len) {
                start_write(i);
            } else {
                copied += s.len;
                s.pos += s.len;
                start_read(i);
            }
        }
    }
    const std::uint64_t t1 = bench::now_ns();
    const std::string arm = "ksvc_" + preset + (inline_mode ? "_inline" : "");
    char extra[160] = "";
    if constexpr (fixed)
        std::snprintf(extra, sizeof extra, ",\"registered\":%s,\"fixed_ops\":%llu,\"plain_ops\":%llu,\"buffers\":%zu",
                      inst.buffers().is_registered() ? "true" : "false", static_cast<unsigned long long>(fixed_ops),
                      static_cast<unsigned long long>(plain_ops), inst.buffers().pool_size());
    bench::copy_result(arm.c_str(), fixed ? "rw_fixed" : splice ? "splice" : "rw", f, copied, t0, t1, cpu0,
                       bench::self_cpu_us(), qd, chunk, inst.backend().setup_flags(), extra);
    if (fixed && plain_ops != 0) {
        std::fprintf(stderr, "copy_ksvc: %llu entries were built as plain pread/pwrite (registration lost?)\n",
                     static_cast<unsigned long long>(plain_ops));
        return 3;
    }
    return copied == f.size ? 0 : 1;
}

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const std::string preset = a.str("preset", "default");
    if (preset == "default") return run<ksvc::default_instance>(a, preset);
    if (preset == "fixed_buffer") return run<ksvc::fixed_buffer_io_uring>(a, preset);
    std::fprintf(stderr, "copy_ksvc: unknown preset %s\n", preset.c_str());
    return 2;
}
