#pragma once
//! The `ksvc` error category: framework conditions that are not kernel errnos.
#include <string>
#include <system_error>

namespace ksvc {

enum class errc : int {
    ring_full = 1,      //!< a bounded queue (submit ring, worker queue, backend) has no room
    unsupported,        //!< the operation or feature is not available on this kernel or policy
    refused,            //!< Tier 3: the dispatcher will not run this call; the caller must
    shut_down,          //!< the instance is stopping or stopped
    unknown_syscall,    //!< the syscall number is not in the native table
    forked_child,       //!< the instance was created in the parent process; a child must make its own
    io_uring_unavailable, //!< io_uring is disabled (sysctl, seccomp) or refused by the kernel
    invalid_argument,   //!< a ksvc-level argument is out of range (not an errno from the kernel)
    multishot_call,     //!< call() cannot wait for a multishot operation: submit() it
    chain_refused,      //!< a linked chain mixes entries only io_uring can run with entries it cannot
    chain_too_long,     //!< a linked chain has more entries than the ring can place at once
    thread_bound,       //!< the call acts on the calling thread: only call() (or the caller) can run it
    needs_ring,         //!< the entry uses a ring resource (fixed file, buffer group): no worker can run it
    timed_out,          //!< call(entry, timeout): the deadline passed before the call could start
    not_owner,          //!< inline mode: the ring is bound to the thread that drove it first; another cannot drive it
    profile_mismatch,   //!< embedded_instance: the running kernel lacks what its compile-time profile promises
    not_registered,     //!< a stream needs a ring resource that is not registered (no file table, a buffer ring refused)
};

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "ksvc"; }
    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
        case errc::ring_full: return "ring full: the bounded queue has no free slot; retry after completions drain";
        case errc::unsupported: return "unsupported on this kernel or by this policy";
        case errc::refused: return "refused: a Tier-3 (process-altering) syscall must be run by the caller itself";
        case errc::shut_down: return "the instance is shut down";
        case errc::unknown_syscall: return "unknown syscall number for this architecture";
        case errc::forked_child: return "instance used in a forked child: it belongs to the parent; create a new one";
        case errc::io_uring_unavailable: return "io_uring is unavailable on this system";
        case errc::invalid_argument: return "invalid argument";
        case errc::multishot_call: return "a multishot operation cannot be waited for by call(): submit() it and take its completions";
        case errc::chain_refused: return "linked chain refused whole: some entries need io_uring and others cannot run on it";
        case errc::chain_too_long: return "linked chain refused: longer than the submission queue can hold at once";
        case errc::thread_bound: return "refused: the call acts on the calling thread; run it with call() or yourself";
        case errc::needs_ring: return "the entry uses a registered ring resource (fixed file or buffer group) and cannot run on a worker";
        case errc::timed_out: return "the call's deadline passed before it could start";
        case errc::not_owner: return "this ring is bound to the thread that first drove the loop (single issuer, deferred task work or a registered ring fd); another thread cannot drive it";
        case errc::profile_mismatch: return "the running kernel lacks what the instance's compile-time kernel profile promises";
        case errc::not_registered: return "the ring resource this needs is not registered: the instance has no fixed-file table, or its provided buffer ring's registration failed (features().notes says why)";
        }
        return "unknown ksvc error";
    }
};

inline const std::error_category& error_category() noexcept {
    static const error_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

//! `-errno` (as the kernel returns it) to an error_code; 0 or positive is success.
inline std::error_code error_from_result(long long r) noexcept {
    return r < 0 ? std::error_code(static_cast<int>(-r), std::system_category()) : std::error_code{};
}

} // namespace ksvc

template <>
struct std::is_error_code_enum<ksvc::errc> : std::true_type {};
