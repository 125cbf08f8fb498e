#pragma once
//! Where a call runs.
#include <cstdint>
#include <string_view>

namespace ksvc {

enum class tier : std::uint8_t {
    shared_page = 0, //!< answered in user space from cached process data
    io_uring = 1,    //!< translated into an SQE
    worker_pool = 2, //!< syscall(2) on a pool thread
    legacy = 3,      //!< refused: process-altering, the caller runs it itself
};
inline constexpr std::size_t tier_count = 4;

constexpr std::string_view to_string(tier t) noexcept {
    switch (t) {
    case tier::shared_page: return "shared_page";
    case tier::io_uring: return "io_uring";
    case tier::worker_pool: return "worker_pool";
    case tier::legacy: return "legacy";
    }
    return "?";
}

} // namespace ksvc
