#pragma once
//! Live counters of one instance, laid out so that another process can read them: the instance
//! publishes this block in a shared-memory file only its own user can read
//! (/dev/shm/ksvc.<pid>.<serial>, mode 0600), and `ksvc-top` maps it read-only.
//!
//! Contract:
//! - Writers: the thread that drives the loop updates `loop` with plain relaxed stores (one
//!   writer, no locked instruction on the hot path); threads in the blocking facade update
//!   `callers` with relaxed fetch_add. Readers add the two.
//! - Readers see each counter atomically (aligned 64-bit words), not the block as a snapshot:
//!   `in flight` derived from `calls - done` may be off by the work of one loop turn.
//! - Per-number counters are indexed by counter_index(nr): syscall numbers below 512, then the
//!   ksvc operations, then one bucket for anything else.
//! - The header is written once before the file is made visible; `features` may be rewritten
//!   once the ring is attached (inline mode: on the owner's first drive), bumping
//!   `features_generation`.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <ksvc/core/operations.hpp>
#include <ksvc/core/tier.hpp>

namespace ksvc {

inline constexpr std::uint32_t counters_magic = 0x6b737663; // "ksvc"
inline constexpr std::uint32_t counters_version = 1;
inline constexpr std::size_t counters_syscall_slots = 512;
inline constexpr std::size_t counters_operation_slots = 64;
static_assert(operation_count <= counters_operation_slots, "ksvc counters: more operations than slots");
//! One slot per syscall number below 512, one per operation, one for anything else.
inline constexpr std::size_t counters_slots = counters_syscall_slots + counters_operation_slots + 1;

constexpr std::size_t counter_index(std::uint32_t nr) noexcept {
    nr &= 0xffffu; // the high half carries no number (tags)
    if (nr < counters_syscall_slots) return nr;
    if (nr >= operation_base && nr - operation_base < counters_operation_slots)
        return counters_syscall_slots + (nr - operation_base);
    return counters_slots - 1;
}
//! The entry number a slot counts (the last slot: "other", returns 0xffffffff).
constexpr std::uint32_t counter_number(std::size_t slot) noexcept {
    if (slot < counters_syscall_slots) return static_cast<std::uint32_t>(slot);
    if (slot < counters_slots - 1) return operation_base + static_cast<std::uint32_t>(slot - counters_syscall_slots);
    return 0xffffffffu;
}

//! Counts kept by one kind of writer (see the header comment).
struct counter_tally {
    std::atomic<std::uint64_t> tier_calls[tier_count];    //!< entries routed to each tier
    std::atomic<std::uint64_t> tier_done[tier_count];     //!< their final completions
    std::atomic<std::uint64_t> tier_failures[tier_count]; //!< final completions with an error
    std::atomic<std::uint64_t> delivered;                 //!< every completion delivered (multishot: each)
    std::atomic<std::uint64_t> enobufs;                   //!< completions that said ENOBUFS (no provided buffer)
    std::atomic<std::uint64_t> calls[counters_slots];
    std::atomic<std::uint64_t> done[counters_slots];
    std::atomic<std::uint64_t> failures[counters_slots];
};

struct counters_block {
    // ---- header: written before the file is visible -------------------------------------
    std::uint32_t magic;
    std::uint32_t version;
    std::uint32_t size;        //!< sizeof(counters_block) of the writer
    std::uint32_t slots;       //!< counters_slots of the writer
    std::int64_t pid;
    std::uint64_t serial;      //!< the instance's number within the process
    std::int64_t started_ns;   //!< CLOCK_REALTIME at construction
    char name[64];             //!< instance_options::name
    char backend[64];          //!< "io_uring", "epoll", …
    char dispatch[16];         //!< "threaded" or "inline"
    // ---- what the ring got (rewritten once attached) --------------------------------------
    std::atomic<std::uint64_t> features_generation;
    std::atomic<std::uint32_t> setup_flags;
    std::atomic<std::uint32_t> ring_features;
    std::atomic<std::uint32_t> sq_entries;
    std::atomic<std::uint32_t> cq_entries;
    std::atomic<std::uint32_t> fixed_files;
    std::atomic<std::uint32_t> registered_ring_fd;
    char features[256];        //!< the fallback notes, one per line (NUL-terminated)
    // ---- gauges the loop refreshes every turn -----------------------------------------------
    std::atomic<std::uint64_t> workers_busy;
    std::atomic<std::uint64_t> workers_total;
    std::atomic<std::uint64_t> workers_max;
    std::atomic<std::uint64_t> workers_queued;
    std::atomic<std::uint64_t> cq_overflows;   //!< CQ overflow lists flushed (the kernel lost nothing)
    std::atomic<std::uint64_t> stream_rearms;  //!< multishot streams the kernel ended and ksvc re-armed
    std::atomic<std::uint64_t> loop_turns;
    // ---- counts ----------------------------------------------------------------------------
    alignas(64) counter_tally loop;
    alignas(64) counter_tally callers;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "ksvc counters need lock-free 64-bit atomics");

namespace detail {
//! Single-writer increment: a relaxed load and store, no locked instruction.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
} // namespace detail

} // namespace ksvc
