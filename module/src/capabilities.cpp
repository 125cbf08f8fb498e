#include <ksvc/module/capabilities.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include <liburing.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace ksvc {
namespace {

int read_io_uring_disabled_sysctl() {
    std::ifstream f("/proc/sys/kernel/io_uring_disabled");
    int v = -1;
    if (f >> v) return v;
    return -1;
}

// Raw setup so a refusal reports its errno without liburing's interpretation.
int raw_setup(unsigned entries, io_uring_params& p) {
    return static_cast<int>(::syscall(__NR_io_uring_setup, entries, &p));
}

// Companion flags a trial needs for the kernel to accept the flag under test.
std::uint32_t prerequisites(std::uint32_t flag) {
    switch (flag) {
    case setup_flag::sq_aff: return setup_flag::sqpoll;
    case setup_flag::taskrun_flag: return setup_flag::coop_taskrun;
    case setup_flag::defer_taskrun: return setup_flag::single_issuer;
    case setup_flag::registered_fd_only: return setup_flag::no_mmap;
    default: return 0;
    }
}

bool trial_setup_flag(std::uint32_t flag) {
    io_uring_params p{};
    p.flags = flag | prerequisites(flag);
    if (flag & setup_flag::cqsize) p.cq_entries = 8;
    if (flag & setup_flag::attach_wq) p.wq_fd = static_cast<__u32>(-1);
    // A trial SQPOLL ring's thread outlives close() until the ring's asynchronous teardown runs,
    // polling for sq_thread_idle (0 means the kernel's default, one second) meanwhile: without
    // this, every process paid up to ~75 ms of CPU right after its first instance was built.
    if (p.flags & setup_flag::sqpoll) p.sq_thread_idle = 1;
    const int fd = raw_setup(4, p);
    if (fd >= 0) {
        ::close(fd);
        return true;
    }
    // An unknown flag is refused with EINVAL before anything else is checked; any other
    // error (EBADF for the deliberately invalid wq_fd, EFAULT for NO_MMAP without memory)
    // means the kernel understood the flag.
    return errno != EINVAL;
}

} // namespace

std::string describe_setup_failure(int err) {
    std::string msg = std::string("io_uring_setup failed: ") + std::strerror(err);
    if (err == ENOMEM) {
        rlimit rl{};
        ::getrlimit(RLIMIT_MEMLOCK, &rl);
        msg += " — the ring's memory is charged against RLIMIT_MEMLOCK (soft limit " +
               (rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(rl.rlim_cur) + " bytes") +
               "); raise it (ulimit -l, LimitMEMLOCK=) or run with CAP_IPC_LOCK";
    } else if (err == EPERM) {
        const int s = read_io_uring_disabled_sysctl();
        msg += s > 0 ? " — io_uring is disabled by sysctl kernel.io_uring_disabled=" + std::to_string(s)
                     : " — refused by a seccomp filter or security policy";
    } else if (err == ENOSYS) {
        msg += " — this kernel was built without io_uring";
    }
    return msg;
}

// KSVC_BUILD_IO_URING_PROBE=OFF (KSVC_NO_IO_URING_PROBE): for platforms where a blocked
// io_uring_setup kills the process, this build never makes one; every snapshot says so.
#if defined(KSVC_NO_IO_URING_PROBE) && KSVC_NO_IO_URING_PROBE
inline constexpr bool build_forbids_probe = true;
#else
inline constexpr bool build_forbids_probe = false;
#endif
inline constexpr const char* forbidden_by_build = "io_uring is not used by this build (KSVC_BUILD_IO_URING_PROBE=OFF)";

// What is known without an io_uring call: the kernel version, the sysctl, and whether this build
// forbids the probe (then io_uring is unavailable, and says why).
capabilities unprobed_snapshot() {
    capabilities c;
    utsname u{};
    if (::uname(&u) == 0)
        if (auto v = kernel_version::parse(u.release)) c.version = *v;
    c.io_uring_disabled_sysctl = read_io_uring_disabled_sysctl();
    if constexpr (build_forbids_probe) c.disable(EPERM, forbidden_by_build);
    return c;
}

capabilities detect_capabilities() {
    capabilities c = unprobed_snapshot();
    if constexpr (build_forbids_probe) return c;

    io_uring_params p{};
    const int fd = raw_setup(4, p);
    if (fd < 0) {
        const int err = errno;
        c.disable(err, describe_setup_failure(err));
        return c;
    }
    c.io_uring_available = true;
    c.features = p.features;

    // IORING_REGISTER_PROBE on the trial ring: the opcode bitset.
    // io_uring_probe ends in a flexible array: give it room for 256 ops.
    alignas(io_uring_probe) unsigned char buf[sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op)] = {};
    auto* probe = reinterpret_cast<io_uring_probe*>(buf);
    if (::syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, probe, 256) == 0) {
        for (unsigned i = 0; i < probe->ops_len && i < 256; ++i)
            if (probe->ops[i].flags & IO_URING_OP_SUPPORTED) c.opcodes.set(i);
    }
    ::close(fd);

    for (const auto& f : setup_flag::table)
        if (trial_setup_flag(f.bit)) c.setup_flags |= f.bit;
    return c;
}

const capabilities& current_capabilities() {
    static const capabilities snapshot = [] {
        // KSVC_DISABLE_IO_URING forbids even the probe: where a blocked io_uring_setup kills
        // the process (a seccomp filter returning SIGSYS), not a single one may be made.
        capabilities unprobed = unprobed_snapshot();
        if constexpr (build_forbids_probe) return unprobed;
        unprobed.io_uring_available = true; // provisional: only to see what the environment says
        if (capabilities env = unprobed.with_environment(); !env.io_uring_available) return env;
        return detect_capabilities().with_environment();
    }();
    return snapshot;
}

} // namespace ksvc
