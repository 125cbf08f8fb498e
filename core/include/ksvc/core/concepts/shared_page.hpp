#pragma once
//! shared_page — Tier 0: answers process-identity queries from user-space data.
//!
//! Contract:
//! - `answer(e, result)` returns true and sets `result` exactly as the syscall would (including
//!   filling output buffers), or returns false when it cannot answer this particular entry (the
//!   dispatcher then runs it on a worker). Never blocks, callable from any thread.
//! - Values are refreshed after fork() in the child and after `observe(nr)` sees a completed
//!   call that changes them (setrlimit, setsid, …); `refresh()` re-reads everything now.
//! - Accessors: pid, ppid, pgid, sid, uid, gid, euid, egid, rlimit_nofile (soft), and `stats()`
//!   (how many answers were served).
#include <concepts>
#include <cstdint>

#include <ksvc/core/entry.hpp>

namespace ksvc {

template <class SP>
concept shared_page = requires(SP& sp, const SP& csp, const submit_entry& e, std::int64_t& r, std::uint32_t nr) {
    { csp.answer(e, r) } noexcept -> std::same_as<bool>;
    { sp.observe(nr) } noexcept;
    { sp.refresh() } noexcept;
    { csp.pid() } noexcept -> std::convertible_to<long>;
    { csp.ppid() } noexcept -> std::convertible_to<long>;
    { csp.pgid() } noexcept -> std::convertible_to<long>;
    { csp.sid() } noexcept -> std::convertible_to<long>;
    { csp.uid() } noexcept -> std::convertible_to<long>;
    { csp.gid() } noexcept -> std::convertible_to<long>;
    { csp.euid() } noexcept -> std::convertible_to<long>;
    { csp.egid() } noexcept -> std::convertible_to<long>;
    { csp.rlimit_nofile() } noexcept -> std::convertible_to<std::uint64_t>;
    { csp.answered() } noexcept -> std::convertible_to<std::uint64_t>;
};

} // namespace ksvc
