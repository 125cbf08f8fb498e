#include <ksvc/module/shared_page/process_shared_page.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc {
namespace nr = syscalls::x86_64;

void process_shared_page::fill(values& v) const noexcept {
    v.pid = ::getpid();
    v.ppid = ::getppid();
    v.pgid = ::getpgrp();
    v.sid = ::getsid(0);
    v.uid = ::getuid();
    v.gid = ::getgid();
    v.euid = ::geteuid();
    v.egid = ::getegid();
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    v.nofile_cur = rl.rlim_cur;
    v.nofile_max = rl.rlim_max;
    ::uname(&v.uts);
}

void process_shared_page::refresh() noexcept {
    const int next = 1 - active_.load(std::memory_order_acquire);
    fill(copies_[next]);
    generation_.store(process::fork_generation(), std::memory_order_relaxed);
    active_.store(next, std::memory_order_release);
}

const process_shared_page::values& process_shared_page::current() const noexcept {
    if (generation_.load(std::memory_order_relaxed) != process::fork_generation())
        const_cast<process_shared_page*>(this)->refresh(); // first use in a forked child
    return copies_[active_.load(std::memory_order_acquire)];
}

void process_shared_page::observe(std::uint32_t n) noexcept {
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

bool process_shared_page::answer(const submit_entry& e, std::int64_t& r) const noexcept {
    const auto* a = e.args;
    const values& v = current();
    switch (e.nr) {
    case nr::getpid: r = v.pid; break;
    case nr::getuid: r = v.uid; break;
    case nr::geteuid: r = v.euid; break;
    case nr::getgid: r = v.gid; break;
    case nr::getegid: r = v.egid; break;
    case nr::getpgrp: r = v.pgid; break;
    case nr::getpgid:
    case nr::getsid: {
        const auto pid = static_cast<long>(static_cast<int>(a[0]));
        if (pid != 0 && pid != v.pid) return false; // another process: ask the kernel
        r = e.nr == nr::getpgid ? v.pgid : v.sid;
        break;
    }
    case nr::getrlimit: {
        if (static_cast<int>(a[0]) != RLIMIT_NOFILE || a[1] == 0) return false;
        auto* out = reinterpret_cast<rlimit*>(a[1]);
        out->rlim_cur = v.nofile_cur;
        out->rlim_max = v.nofile_max;
        r = 0;
        break;
    }
    case nr::uname:
        if (a[0] == 0) return false; // EFAULT comes from the kernel
        std::memcpy(reinterpret_cast<void*>(a[0]), &v.uts, sizeof v.uts);
        r = 0;
        break;
    case nr::gettimeofday: // vDSO: no syscall
        r = ::gettimeofday(reinterpret_cast<timeval*>(a[0]), reinterpret_cast<struct timezone*>(a[1])) == 0
                ? 0 : -static_cast<std::int64_t>(errno);
        break;
    case nr::time: {
        const std::time_t t = ::time(nullptr);
        if (a[0]) *reinterpret_cast<std::time_t*>(a[0]) = t;
        r = t;
        break;
    }
    case nr::clock_gettime: {
        const auto clk = static_cast<clockid_t>(a[0]);
        // Thread CPU clocks name the calling thread: only the caller can read them.
        if (clk == CLOCK_THREAD_CPUTIME_ID || (clk < 0 && (clk & 4) && (clk & 3) != 3)) return false;
        if (a[1] == 0) { r = -EFAULT; break; }
        r = ::clock_gettime(clk, reinterpret_cast<timespec*>(a[1])) == 0 ? 0 : -static_cast<std::int64_t>(errno);
        break;
    }
    default: return false;
    }
    answered_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

} // namespace ksvc
