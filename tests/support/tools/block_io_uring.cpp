// ksvc-block-io-uring — runs a command with io_uring blocked by a real seccomp filter, as Docker
// >= 25 and containerd 2.0 do in their default profiles.
//
//   ksvc-block-io-uring [--kill] [--] COMMAND [ARGS...]
//
// io_uring_setup, io_uring_enter and io_uring_register fail with EPERM (--kill: the process is
// killed with SIGSYS instead, as on platforms whose filters kill). The filter is inherited by
// COMMAND through execvp. Exit status: COMMAND's, or 2 on a usage error, 1 when the filter
// cannot be installed.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

int install(bool kill) {
    const unsigned action = kill ? SECCOMP_RET_KILL_PROCESS : (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(seccomp_data, arch))),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), // another ABI: not ours to judge
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(seccomp_data, nr))),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, action),
    };
    sock_fprog fprog{static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
    // Unprivileged filters need no_new_privs; root sets it too (the filter must not be escaped).
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return -errno;
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    bool kill = false;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--kill") kill = true;
        else if (a == "--help" || a == "-h") {
            std::printf("usage: ksvc-block-io-uring [--kill] [--] COMMAND [ARGS...]\n"
                        "Runs COMMAND with io_uring_setup/enter/register refused by seccomp (EPERM; --kill: SIGSYS).\n");
            return 0;
        } else if (a == "--") {
            ++i;
            break;
        } else break;
    }
    if (i >= argc) {
        std::fprintf(stderr, "usage: ksvc-block-io-uring [--kill] [--] COMMAND [ARGS...]\n");
        return 2;
    }
    if (const int r = install(kill); r != 0) {
        std::fprintf(stderr, "ksvc-block-io-uring: installing the seccomp filter failed: %s\n", std::strerror(-r));
        return 1;
    }
    ::execvp(argv[i], argv + i);
    std::fprintf(stderr, "ksvc-block-io-uring: %s: %s\n", argv[i], std::strerror(errno));
    return 127;
}
