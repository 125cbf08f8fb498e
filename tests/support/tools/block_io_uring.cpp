// ksvc-block-io-uring — runs a command with io_uring blocked by a real seccomp filter, as Docker
// >= 25 and containerd 2.0 do in their default profiles.
//
//   ksvc-block-io-uring [--kill] [--] COMMAND [ARGS...]
//
// io_uring_setup, io_uring_enter and io_uring_register fail with EPERM (--kill: the process is
// killed with SIGSYS instead, as on platforms whose filters kill). The filter is inherited by
// COMMAND through execvp. Exit status: COMMAND's, or 2 on a usage error, 1 when the filter
// cannot be installed.
#include <cstdio>
#include <cstring>
#include <string_view>

#include <unistd.h>

#include "support/block_io_uring.hpp"

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
    if (const int r = ksvc::test::block_io_uring(kill); r != 0) {
        std::fprintf(stderr, "ksvc-block-io-uring: installing the seccomp filter failed: %s\n", std::strerror(r));
        return 1;
    }
    ::execvp(argv[i], argv + i);
    std::fprintf(stderr, "ksvc-block-io-uring: %s: %s\n", argv[i], std::strerror(errno));
    return 127;
}
