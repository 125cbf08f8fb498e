#pragma once
//! process_shared_page — Tier 0 without a kernel module: process identity read into user-space
//! atomics at the first answer (not at construction: an instance that never answers from it
//! pays none of its ten syscalls at start-up), re-read lazily in a forked child (fork
//! generation) and after observed calls that change it (setsid, setpgid, setrlimit, prlimit64,
//! sethostname, setdomainname).
//! Clocks are read through the vDSO each time, never cached.
//!
//! Not observable from here (call refresh() after them): credential changes made by the
//! caller itself (set*id are Tier 3), and changes made by *other* processes (a parent's
//! setpgid before exec, prlimit(2) on us, another process's sethostname).
#include <atomic>
#include <cstdint>

#include <mutex>

#include <sys/utsname.h>

#include <ksvc/core/syscalls.hpp>
#include <ksvc/core/concepts/shared_page.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc {

class process_shared_page {
public:
    process_shared_page() noexcept = default;
    process_shared_page(const process_shared_page&) = delete;
    process_shared_page& operator=(const process_shared_page&) = delete;

    bool answer(const submit_entry& e, std::int64_t& result) const noexcept;
    //! Called for every successful completion, hence inline: only calls that change what the
    //! page caches trigger a refresh.
    void observe(std::uint32_t n) noexcept {
        namespace nr = syscalls::x86_64;
        switch (n) {
        case nr::setsid:
        case nr::setpgid:
        case nr::setrlimit:
        case nr::prlimit64:
        case nr::sethostname:
        case nr::setdomainname: refresh(); break;
        default: break;
        }
    }
    void refresh() noexcept;

    [[nodiscard]] long pid() const noexcept { return load(pid_); }
    [[nodiscard]] long ppid() const noexcept { return load(ppid_); }
    [[nodiscard]] long pgid() const noexcept { return load(pgid_); }
    [[nodiscard]] long sid() const noexcept { return load(sid_); }
    [[nodiscard]] long uid() const noexcept { return load(uid_); }
    [[nodiscard]] long gid() const noexcept { return load(gid_); }
    [[nodiscard]] long euid() const noexcept { return load(euid_); }
    [[nodiscard]] long egid() const noexcept { return load(egid_); }
    [[nodiscard]] std::uint64_t rlimit_nofile() const noexcept { return load(nofile_cur_); }
    [[nodiscard]] std::uint64_t answered() const noexcept { return answered_.load(std::memory_order_relaxed); }

private:
    // Each value is its own atomic (readers on any thread, refresh on the dispatcher's); the
    // utsname is too large for that and is copied under a mutex (uname is rarely hot).
    template <class T>
    T load(const std::atomic<T>& v) const noexcept {
        // Acquire: pairs with refresh()'s release, so a reader that sees the generation sees
        // the values stored before it (another thread may be making the first refresh).
        if (generation_.load(std::memory_order_acquire) != process::fork_generation())
            const_cast<process_shared_page*>(this)->refresh(); // first use, or in a forked child
        return v.load(std::memory_order_relaxed);
    }

    std::atomic<long> pid_{0}, ppid_{0}, pgid_{0}, sid_{0}, uid_{0}, gid_{0}, euid_{0}, egid_{0};
    std::atomic<std::uint64_t> nofile_cur_{0}, nofile_max_{0};
    mutable std::mutex uts_mutex_;
    struct utsname uts_{};
    static constexpr std::uint64_t never_read = ~std::uint64_t{0}; // no fork generation reaches it
    std::atomic<std::uint64_t> generation_{never_read};
    mutable std::atomic<std::uint64_t> answered_{0};
};
static_assert(shared_page<process_shared_page>);

} // namespace ksvc
