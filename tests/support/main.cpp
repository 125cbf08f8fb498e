// The one Boost.Test main of every suite. Suites that need io_uring probe the kernel first and
// exit 77 (skipped) only when it truly refuses io_uring, printing why.
#define BOOST_TEST_MODULE ksvc
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>

#ifdef KSVC_TEST_NEEDS_IO_URING
#include <ksvc/module/capabilities.hpp>

namespace {
// The kernel's own answer (detect_capabilities), not the process snapshot: a stray
// KSVC_DISABLE_IO_URING or KSVC_ASSUME_KERNEL in the environment must make the suites fail
// loudly, never skip them.
struct require_io_uring {
    require_io_uring() {
        const auto caps = ksvc::detect_capabilities();
        if (!caps.io_uring_available) {
            std::fprintf(stderr, "SKIP: io_uring unavailable: %s\n", caps.unavailable_reason.c_str());
            std::_Exit(77);
        }
    }
};
} // namespace
BOOST_TEST_GLOBAL_FIXTURE(require_io_uring);
#endif
