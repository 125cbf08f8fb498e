#pragma once
//! Live detection of the kernel capability snapshot.
#include <ksvc/core/kernel.hpp>

namespace ksvc {

//! Probes this kernel now: uname, kernel.io_uring_disabled, a trial io_uring_setup (EPERM from
//! the sysctl or seccomp, ENOSYS, ENOMEM are recorded with a reason), IORING_REGISTER_PROBE,
//! IORING_FEAT_*, and one trial setup per IORING_SETUP_* flag. Never throws for an unavailable
//! io_uring: that is a valid snapshot.
capabilities detect_capabilities();

//! The process-wide snapshot: detect_capabilities().with_environment(), computed once
//! (thread-safe). Throws std::invalid_argument if KSVC_ASSUME_KERNEL does not parse.
const capabilities& current_capabilities();

//! Message for a failed io_uring_setup: names the call, the errno, and the likely cause
//! (RLIMIT_MEMLOCK and its current value for ENOMEM, the sysctl or seccomp for EPERM).
std::string describe_setup_failure(int err);

} // namespace ksvc
