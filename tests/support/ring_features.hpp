#pragma once
// What an owner-thread ring (single_issuer + defer_taskrun + registered_ring_fd) gets under a
// kernel snapshot: the checks the feature suite and the server preset share.
#include <boost/test/unit_test.hpp>

#include <liburing.h>

#include <ksvc/module/backends/io_uring_backend.hpp>

#include "support/kernels.hpp"

namespace ksvc::test {

inline bool has(const effective_features& f, std::uint32_t bit) { return (f.setup_flags & bit) != 0; }

inline void check_owner_thread_ring(const effective_features& f, kernel_version v) {
    BOOST_TEST(has(f, IORING_SETUP_SINGLE_ISSUER) == (v >= kernel_version{6, 0}));
    BOOST_TEST(has(f, IORING_SETUP_DEFER_TASKRUN) == (v >= kernel_version{6, 1}));
    // graceful: DEFER_TASKRUN -> COOP_TASKRUN where only that exists
    BOOST_TEST(has(f, IORING_SETUP_COOP_TASKRUN) == (v >= kernel_version{5, 19} && v < kernel_version{6, 1}));
    BOOST_TEST(f.registered_ring_fd == (v >= kernel_version{5, 18}));
    BOOST_TEST(has(f, IORING_SETUP_SUBMIT_ALL) == (v >= kernel_version{5, 18}));
    BOOST_TEST(f.owner_thread == (v >= kernel_version{5, 18})); // nothing binds it before
}

} // namespace ksvc::test
