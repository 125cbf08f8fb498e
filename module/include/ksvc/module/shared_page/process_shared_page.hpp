#pragma once
//! process_shared_page — Tier 0 without a kernel module: process identity read once into
//! user-space atomics, re-read lazily in a forked child (fork generation) and after observed
//! calls that change it (setsid, setpgid, setrlimit, prlimit64, sethostname, setdomainname).
//! Clocks are read through the vDSO each time, never cached.
//!
//! Not observable from here (call refresh() after them): credential changes made by the
//! caller itself (set*id are Tier 3), and changes made by *other* processes (a parent's
//! setpgid before exec, prlimit(2) on us, another process's sethostname).
#include <atomic>
#include <cstdint>

#include <sys/utsname.h>

#include <ksvc/core/concepts/shared_page.hpp>

namespace ksvc {

class process_shared_page {
public:
    process_shared_page() noexcept { refresh(); }
    process_shared_page(const process_shared_page&) = delete;
    process_shared_page& operator=(const process_shared_page&) = delete;

    bool answer(const submit_entry& e, std::int64_t& result) const noexcept;
    void observe(std::uint32_t nr) noexcept;
    void refresh() noexcept;

    [[nodiscard]] long pid() const noexcept { return current().pid; }
    [[nodiscard]] long ppid() const noexcept { return current().ppid; }
    [[nodiscard]] long pgid() const noexcept { return current().pgid; }
    [[nodiscard]] long sid() const noexcept { return current().sid; }
    [[nodiscard]] long uid() const noexcept { return current().uid; }
    [[nodiscard]] long gid() const noexcept { return current().gid; }
    [[nodiscard]] long euid() const noexcept { return current().euid; }
    [[nodiscard]] long egid() const noexcept { return current().egid; }
    [[nodiscard]] std::uint64_t rlimit_nofile() const noexcept { return current().nofile_cur; }
    [[nodiscard]] std::uint64_t answered() const noexcept { return answered_.load(std::memory_order_relaxed); }

private:
    struct values {
        long pid, ppid, pgid, sid, uid, gid, euid, egid;
        std::uint64_t nofile_cur, nofile_max;
        struct utsname uts;
    };
    // Double-buffered so readers on other threads never see a torn refresh: a refresh fills the
    // inactive copy and then flips `active_` (release).
    const values& current() const noexcept;
    void fill(values& v) const noexcept;

    mutable values copies_[2]{};
    mutable std::atomic<int> active_{0};
    mutable std::atomic<std::uint64_t> generation_{0};
    mutable std::atomic<std::uint64_t> answered_{0};
};
static_assert(shared_page<process_shared_page>);

} // namespace ksvc
