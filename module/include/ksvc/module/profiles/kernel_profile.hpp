#pragma once
//! Kernel profiles: what a known kernel's io_uring offers, fixed at compile time, for
//! static_router<Profile> and embedded_instance<Profile> (no probing at start-up).
//!
//! A profile is a type with
//!   static constexpr kernel_version version;      // major.minor decide; the patch is informative
//!   static constexpr opcode_set opcodes;          // IORING_OP_* the kernel supports
//!   static constexpr std::uint32_t setup_flags;   // IORING_SETUP_* that a trial setup accepts
//!   static constexpr std::uint32_t features;      // IORING_FEAT_* that io_uring_setup reports
//! (the kernel_profile concept). Two ways to get one:
//! - model_profile<Major, Minor>: computed from ksvc's tables (opcodes.hpp, kernel.hpp) — the
//!   same tables capabilities::for_kernel() reads, so the shipped profiles and the snapshot
//!   model are one source. The shipped ones (linux_5_10 … linux_6_18) are these.
//! - `ksvc-probe --emit-profile`: a header describing the machine it runs on (the same four
//!   members, read off the kernel). On the real 6.1, 6.12 and 6.18 kernels it prints exactly the
//!   shipped profile's values (tested).
//! Boost.Hana folds the tables into the sets and lists the shipped profiles; it stays out of the
//! public signatures (the members are plain integers).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/hana/ext/std/array.hpp>
#include <boost/hana/fold_left.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include <ksvc/core/kernel.hpp>
#include <ksvc/core/kernel_version.hpp>
#include <ksvc/core/opcodes.hpp>

namespace ksvc {

//! A set of io_uring opcodes (0..255), usable in constant expressions.
struct opcode_set {
    std::uint64_t words[4]{};

    constexpr bool has(opcode op) const noexcept {
        const auto i = static_cast<std::size_t>(op);
        return op != opcode::none && (words[i / 64] >> (i % 64)) & 1u;
    }
    constexpr bool has_index(std::size_t i) const noexcept { return i < 256 && ((words[i / 64] >> (i % 64)) & 1u); }
    constexpr opcode_set with(std::size_t i) const noexcept {
        opcode_set s = *this;
        s.words[i / 64] |= std::uint64_t{1} << (i % 64);
        return s;
    }
    friend constexpr bool operator==(const opcode_set&, const opcode_set&) = default;
};

template <class P>
concept kernel_profile = requires {
    { P::version } -> std::convertible_to<kernel_version>;
    { P::opcodes } -> std::convertible_to<opcode_set>;
    { P::setup_flags } -> std::convertible_to<std::uint32_t>;
    { P::features } -> std::convertible_to<std::uint32_t>;
};

namespace detail {
// kernel version -> what it has, folded over ksvc's tables.
constexpr opcode_set opcodes_of(kernel_version v) {
    return boost::hana::fold_left(opcode_table, opcode_set{}, [v](opcode_set s, const opcode_info& o) {
        return v >= o.since ? s.with(static_cast<std::size_t>(o.op)) : s;
    });
}
} // namespace detail

//! The profile of kernel Major.Minor as ksvc's tables describe it (io_uring enabled).
template <unsigned Major, unsigned Minor>
struct model_profile {
    static constexpr kernel_version version{Major, Minor, 0};
    static constexpr opcode_set opcodes = detail::opcodes_of(version);
    static constexpr std::uint32_t setup_flags = setup_flag::available_in(version);
    static constexpr std::uint32_t features = ring_feature::available_in(version);
};

//! The long-term kernels and the one ksvc is developed on.
using linux_5_10 = model_profile<5, 10>;
using linux_5_15 = model_profile<5, 15>;
using linux_6_1 = model_profile<6, 1>;
using linux_6_6 = model_profile<6, 6>;
using linux_6_12 = model_profile<6, 12>;
using linux_6_18 = model_profile<6, 18>;
static_assert(kernel_profile<linux_6_18>);

//! Every shipped profile, oldest first (for suites templated over them: hana::for_each).
inline constexpr auto shipped_profiles =
    boost::hana::tuple_t<linux_5_10, linux_5_15, linux_6_1, linux_6_6, linux_6_12, linux_6_18>;

//! The capability snapshot a profile promises (assumed: nothing was probed).
template <kernel_profile P>
capabilities profile_capabilities() {
    capabilities c;
    c.version = P::version;
    c.assumed = true;
    c.io_uring_available = true;
    c.io_uring_disabled_sysctl = 0;
    for (std::size_t i = 0; i < 256; ++i)
        if (P::opcodes.has_index(i)) c.opcodes.set(i);
    c.setup_flags = P::setup_flags;
    c.features = P::features;
    return c;
}

//! What the running kernel lacks of what a profile promises, from a snapshot of it: an empty
//! string when it offers everything, else one line naming the missing opcodes, setup flags and
//! features (the embedded instance's start-up check, and ksvc-probe).
std::string profile_shortfall(const capabilities& running, kernel_version promised_version, const opcode_set& opcodes,
                              std::uint32_t setup_flags, std::uint32_t features);
template <kernel_profile P>
std::string profile_shortfall(const capabilities& running) {
    return profile_shortfall(running, P::version, P::opcodes, P::setup_flags, P::features);
}

} // namespace ksvc
