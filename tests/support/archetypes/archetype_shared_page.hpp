#pragma once
//! archetype_shared_page — the minimal shared_page: process identity read into atomics (so any
//! thread may read while the owner refreshes), re-read in a forked child and after observed
//! calls that change it. Answers getpid and the four credential getters; nothing else.
#include <atomic>
#include <cstdint>

#include <sys/resource.h>
#include <unistd.h>

#include <ksvc/core/concepts/shared_page.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc::test {

class archetype_shared_page {
public:
    archetype_shared_page() noexcept { refresh(); }
    archetype_shared_page(const archetype_shared_page&) = delete;
    archetype_shared_page& operator=(const archetype_shared_page&) = delete;

    bool answer(const submit_entry& e, std::int64_t& result) const noexcept {
        namespace nr = syscalls::x86_64;
        switch (e.nr) {
        case nr::getpid: result = pid(); break;
        case nr::getuid: result = uid(); break;
        case nr::geteuid: result = euid(); break;
        case nr::getgid: result = gid(); break;
        case nr::getegid: result = egid(); break;
        default: return false;
        }
        answered_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    void observe(std::uint32_t n) noexcept {
        namespace nr = syscalls::x86_64;
        if (n == nr::setsid || n == nr::setpgid || n == nr::setrlimit || n == nr::prlimit64) refresh();
    }
    void refresh() noexcept {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        const long v[] = {::getpid(), ::getppid(), ::getpgrp(), ::getsid(0),
                          static_cast<long>(::getuid()), static_cast<long>(::getgid()),
                          static_cast<long>(::geteuid()), static_cast<long>(::getegid())};
        for (int i = 0; i < 8; ++i) ids_[i].store(v[i], std::memory_order_relaxed);
        nofile_.store(rl.rlim_cur, std::memory_order_relaxed);
        generation_.store(process::fork_generation(), std::memory_order_release);
    }

    [[nodiscard]] long pid() const noexcept { return get(0); }
    [[nodiscard]] long ppid() const noexcept { return get(1); }
    [[nodiscard]] long pgid() const noexcept { return get(2); }
    [[nodiscard]] long sid() const noexcept { return get(3); }
    [[nodiscard]] long uid() const noexcept { return get(4); }
    [[nodiscard]] long gid() const noexcept { return get(5); }
    [[nodiscard]] long euid() const noexcept { return get(6); }
    [[nodiscard]] long egid() const noexcept { return get(7); }
    [[nodiscard]] std::uint64_t rlimit_nofile() const noexcept {
        fresh();
        return nofile_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t answered() const noexcept { return answered_.load(std::memory_order_relaxed); }

private:
    void fresh() const noexcept { // first use in a forked child: the copy describes the parent
        if (generation_.load(std::memory_order_acquire) != process::fork_generation())
            const_cast<archetype_shared_page*>(this)->refresh();
    }
    long get(int i) const noexcept {
        fresh();
        return ids_[i].load(std::memory_order_relaxed);
    }

    std::atomic<long> ids_[8]{};
    std::atomic<std::uint64_t> nofile_{0};
    std::atomic<std::uint64_t> generation_{0};
    mutable std::atomic<std::uint64_t> answered_{0};
};
static_assert(shared_page<archetype_shared_page>);

} // namespace ksvc::test
