//! Reference: the raw liburing NOP loop. Usage:
//!   nop_raw [--batch 32] [--op nop|write_null|read_zero] [--ops 10000000] [--flags 0]
//! Prints one JSON line: ops, seconds, ops_per_sec.
#include <cstdio>
#include <string>

#include "../common/harness.hpp"
#include "raw_nop.hpp"

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const auto batch = static_cast<unsigned>(a.num("batch", 32));
    const auto total = static_cast<unsigned long long>(a.num("ops", 10'000'000));
    const std::string op_name = a.str("op", "write_null");
    bench::raw::nop_op op = bench::raw::nop_op::write_null;
    if (op_name == "nop") op = bench::raw::nop_op::nop;
    else if (op_name == "read_zero") op = bench::raw::nop_op::read_zero;
    bench::raw::nop_ring ring(batch < 256 ? 256 : batch, static_cast<unsigned>(a.num("flags", 0)));
    for (int i = 0; i < 1000; ++i) ring.run_batch(batch, op); // warm-up
    unsigned long long done = 0, bad = 0;
    const auto t0 = bench::now_ns();
    while (done < total) {
        bad += ring.run_batch(batch, op);
        done += batch;
    }
    const double s = static_cast<double>(bench::now_ns() - t0) / 1e9;
    std::printf("{\"arm\":\"raw_liburing\",\"op\":\"%s\",\"batch\":%u,\"ops\":%llu,\"bad\":%llu,\"seconds\":%.6f,"
                "\"ops_per_sec\":%.1f,\"ring_flags\":%u}\n",
                op_name.c_str(), batch, done, bad, s, static_cast<double>(done) / s, ring.setup_flags());
    return bad ? 1 : 0;
}
