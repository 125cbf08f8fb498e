#pragma once
//! The two records that travel through ksvc: a submission and its completion.
#include <cstddef>
#include <cstdint>
#include <system_error>

#include <ksvc/core/error.hpp>

namespace ksvc {

//! Flags a submitter sets on an entry; echoed back in completion_entry::entry_flags.
namespace entry_flags {
//! corr_id is the address of an executor-owned waiter; the completion bypasses the sink.
inline constexpr std::uint32_t direct_waiter = 1u << 0;
//! Bits 16..31 belong to the user and are echoed untouched.
inline constexpr std::uint32_t user_mask = 0xffff0000u;
} // namespace entry_flags

//! One system call to run: 64 bytes, one cache line.
struct alignas(64) submit_entry {
    std::uint64_t corr_id = 0;  //!< caller's correlation id, returned in the completion
    std::uint32_t nr = 0;       //!< native syscall number
    std::uint32_t flags = 0;    //!< entry_flags
    std::uint64_t args[6] = {}; //!< raw syscall arguments, as syscall(2) takes them
};
static_assert(sizeof(submit_entry) == 64);

namespace completion_flags {
inline constexpr std::uint32_t more = 1u << 0;        //!< multishot: more completions follow
inline constexpr std::uint32_t buffer = 1u << 1;      //!< aux holds a provided-buffer id
inline constexpr std::uint32_t ksvc_error = 1u << 2;  //!< result is -ksvc::errc, not -errno
} // namespace completion_flags

//! The outcome of one submit_entry: 32 bytes.
struct alignas(32) completion_entry {
    std::uint64_t corr_id = 0;
    std::int64_t result = 0;       //!< value, or -errno (or -errc with completion_flags::ksvc_error)
    std::uint32_t flags = 0;       //!< completion_flags
    std::uint32_t aux = 0;         //!< provided-buffer id when flags has `buffer`
    std::uint32_t entry_flags = 0; //!< the submit_entry's flags, echoed
    std::uint32_t nr = 0;          //!< the syscall that produced it

    [[nodiscard]] bool ok() const noexcept { return result >= 0; }
    //! The failure as an error_code: system_category for -errno, ksvc category for framework errors.
    [[nodiscard]] std::error_code error() const noexcept {
        if (result >= 0) return {};
        if (flags & completion_flags::ksvc_error) return make_error_code(static_cast<errc>(-result));
        return {static_cast<int>(-result), std::system_category()};
    }
};
static_assert(sizeof(completion_entry) == 32);

//! A completion carrying a framework error instead of a kernel result.
constexpr completion_entry make_framework_completion(const submit_entry& e, errc why) noexcept {
    return {e.corr_id, -static_cast<std::int64_t>(why), completion_flags::ksvc_error, 0, e.flags, e.nr};
}

constexpr completion_entry make_completion(const submit_entry& e, std::int64_t result) noexcept {
    return {e.corr_id, result, 0, 0, e.flags, e.nr};
}

//! A non-owning wake-up callback (function pointer + context): no virtual dispatch, no allocation.
struct waker {
    void (*fn)(void*) noexcept = nullptr;
    void* ctx = nullptr;
    void operator()() const noexcept {
        if (fn) fn(ctx);
    }
};

} // namespace ksvc
