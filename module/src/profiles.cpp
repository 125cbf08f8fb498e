#include <ksvc/module/profiles/kernel_profile.hpp>

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include <liburing.h>

#include <ksvc/core/error.hpp>
#include <ksvc/module/embedded.hpp>

namespace ksvc {

std::string profile_shortfall(const capabilities& running, kernel_version promised, const opcode_set& opcodes,
                              std::uint32_t setup_flags, std::uint32_t features) {
    const std::string target = std::to_string(promised.major) + "." + std::to_string(promised.minor);
    if (!running.io_uring_available)
        return "the profile for " + target + " needs io_uring, which is unavailable here: " + running.unavailable_reason;
    std::string missing_ops, missing_flags, missing_features;
    auto add = [](std::string& list, std::string_view name) {
        list += list.empty() ? "" : ", ";
        list += name;
    };
    for (const opcode_info& o : opcode_table)
        if (opcodes.has(o.op) && !running.has(o.op)) add(missing_ops, o.name);
    for (const auto& f : setup_flag::table)
        if ((setup_flags & f.bit) && !running.has_setup_flag(f.bit)) add(missing_flags, f.name);
    for (const auto& f : ring_feature::table)
        if ((features & f.bit) && !running.has_feature(f.bit)) add(missing_features, f.name);
    if (missing_ops.empty() && missing_flags.empty() && missing_features.empty()) return {};
    std::string s = "kernel " + running.version.to_string() + " lacks what the profile for " + target + " promises:";
    if (!missing_ops.empty()) s += " opcodes " + missing_ops + ";";
    if (!missing_flags.empty()) s += " setup flags " + missing_flags + ";";
    if (!missing_features.empty()) s += " features " + missing_features + ";";
    s.pop_back();
    return s;
}

// ---- embedded_instance's start-up check --------------------------------------------------------

void verify_kernel_offers(kernel_version promised, const opcode_set& opcodes, std::uint32_t setup_flags,
                          std::uint32_t features, int ring_fd, std::uint32_t ring_features) {
    capabilities running;
    // The release is needed only to narrow to KSVC_ASSUME_KERNEL or to name a shortfall: the
    // check itself is the probe's opcodes and the ring's features (uname is ~1.5 µs of a ~70 µs start).
    auto read_version = [&running] {
        utsname u{};
        if (::uname(&u) == 0)
            if (const auto v = kernel_version::parse(u.release)) running.version = *v;
    };
    if (const char* assume = std::getenv("KSVC_ASSUME_KERNEL"); assume && *assume) read_version();
    // The environment decides first: KSVC_DISABLE_IO_URING forbids even this one setup (a
    // platform where the blocked syscall kills the process), KSVC_ASSUME_KERNEL narrows below.
    running.io_uring_available = true;
    if (const capabilities env = running.with_environment(); !env.io_uring_available)
        throw std::system_error(make_error_code(errc::io_uring_unavailable), "embedded_instance: " + env.unavailable_reason);
    // A ring of its own only for the probe: its fd is all the check needs, so nothing is mapped.
    struct owned_fd {
        int fd = -1;
        ~owned_fd() {
            if (fd >= 0) ::close(fd);
        }
    } own;
    if (ring_fd < 0) {
        io_uring_params p{};
        const long fd = ::syscall(__NR_io_uring_setup, 2, &p);
        if (fd < 0) {
            const int err = errno;
            throw std::system_error(make_error_code(errc::io_uring_unavailable),
                                    std::string("embedded_instance: io_uring_setup failed: ") + std::strerror(err) +
                                        (err == EPERM ? " (kernel.io_uring_disabled or a seccomp filter)" : ""));
        }
        own.fd = ring_fd = static_cast<int>(fd);
        ring_features = p.features;
    }
    running.features = ring_features;
    running.setup_flags = setup_flags; // the instance's own ring setup checks the flags it uses
    // IORING_REGISTER_PROBE directly (liburing's helper wants a struct io_uring).
    constexpr unsigned probe_ops = 256;
    std::vector<std::byte> buf(sizeof(io_uring_probe) + probe_ops * sizeof(io_uring_probe_op));
    auto* probe = reinterpret_cast<io_uring_probe*>(buf.data());
    if (::syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_PROBE, probe, probe_ops) == 0)
        for (int op = 0; op <= probe->last_op && op < static_cast<int>(probe_ops); ++op)
            if (probe->ops[op].flags & IO_URING_OP_SUPPORTED) running.opcodes.set(static_cast<std::size_t>(op));
    running = running.with_environment();
    std::string missing = profile_shortfall(running, promised, opcodes, setup_flags, features);
    if (!missing.empty() && running.version == kernel_version{}) {
        read_version();
        missing = profile_shortfall(running, promised, opcodes, setup_flags, features);
    }
    if (!missing.empty()) throw std::system_error(make_error_code(errc::profile_mismatch), "embedded_instance: " + missing);
}

} // namespace ksvc
