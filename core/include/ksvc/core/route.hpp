#pragma once
#include <cstdint>

#include <ksvc/core/opcodes.hpp>
#include <ksvc/core/tier.hpp>

namespace ksvc {

//! A router's answer for one syscall number. Four bytes aligned so it travels as one 32-bit
//! word: as a 3-byte struct GCC assembled it on the stack byte by byte and reloaded it whole,
//! a store-forwarding stall on every routed entry.
struct alignas(4) route_info {
    ksvc::tier tier = tier::legacy;
    opcode op = opcode::none; //!< the SQE opcode when tier == io_uring, else none
    bool worker_safe = false; //!< may run on another thread if the backend cannot take it
    friend constexpr bool operator==(route_info, route_info) = default;
};

} // namespace ksvc
