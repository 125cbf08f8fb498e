#pragma once
#include <cstdint>
#include <system_error>

#include <ksvc/core/error.hpp>
#include <ksvc/core/opcodes.hpp>
#include <ksvc/core/tier.hpp>

namespace ksvc {

//! A router's answer for one syscall or operation number. Four bytes aligned so it travels as
//! one 32-bit word: as a 3-byte struct GCC assembled it on the stack byte by byte and reloaded
//! it whole, a store-forwarding stall on every routed entry.
struct alignas(4) route_info {
    ksvc::tier tier = tier::legacy;
    opcode op = opcode::none; //!< the SQE opcode when tier == io_uring, else none
    bool worker_safe = false; //!< may run on another thread if the backend cannot take it
    bool emulated = false;    //!< an operation this kernel lacks, produced by re-armed single shots
    friend constexpr bool operator==(route_info, route_info) = default;
};
static_assert(sizeof(route_info) == 4);

//! The hot path's result: `ok` or the ksvc condition that stopped it (values are errc's).
//! A std::error_code is made from it only at the public API.
enum class status : std::uint8_t {
    ok = 0,
    ring_full = static_cast<std::uint8_t>(errc::ring_full),
    unsupported = static_cast<std::uint8_t>(errc::unsupported),
    shut_down = static_cast<std::uint8_t>(errc::shut_down),
    forked_child = static_cast<std::uint8_t>(errc::forked_child),
    invalid_argument = static_cast<std::uint8_t>(errc::invalid_argument),
    chain_too_long = static_cast<std::uint8_t>(errc::chain_too_long),
    needs_ring = static_cast<std::uint8_t>(errc::needs_ring),
};

constexpr errc to_errc(status s) noexcept { return static_cast<errc>(s); }
inline std::error_code to_error_code(status s) noexcept {
    return s == status::ok ? std::error_code{} : make_error_code(to_errc(s));
}

} // namespace ksvc
