#pragma once
#include <ksvc/core/entry.hpp>

namespace ksvc::detail {
//! Runs `e` with syscall(2) on this thread and builds its completion (-errno on failure).
//! SIGPIPE must already be blocked on this thread; a pending one is consumed after EPIPE.
completion_entry run_syscall(const submit_entry& e) noexcept;
} // namespace ksvc::detail
