#pragma once
#include <ksvc/core/entry.hpp>

namespace ksvc::detail {
//! Runs `e` with syscall(2) on this thread and builds its completion (-errno on failure).
//! SIGPIPE must already be blocked on this thread; a pending one is consumed after EPIPE.
completion_entry run_syscall(const submit_entry& e) noexcept;

//! The same on a thread ksvc does not own (a blocking caller's): SIGPIPE is blocked around
//! syscalls that can raise it and a SIGPIPE they raised is consumed (EPIPE, not a kill).
completion_entry run_syscall_here(const submit_entry& e) noexcept;

//! Runs a linked chain in order on this thread as io_uring would: after a `link` entry fails
//! or transfers less than asked, the rest complete with -ECANCELED (`hardlink` continues).
//! Writes one completion per entry into `out` (same size as `chain`).
void run_chain(const submit_entry* chain, std::size_t n, completion_entry* out) noexcept;
} // namespace ksvc::detail
